// The RivetKit 2.3.19 side of TestCaptureRunnerFrames: a registry that runs
// as a runner of the engine (RIVET_ENDPOINT points at the test's recording
// proxy), driven by the official client talking to the engine's guard
// directly (CLIENT_ENDPOINT). Each step prints "step NAME" so the frames
// recorded meanwhile can be attributed.
import { actor, setup } from "rivetkit";
import { createClient } from "rivetkit/client";

const counter = actor({
	state: { count: 0, ticks: 0 },
	options: { sleepTimeout: 60_000 },
	actions: {
		increment: (c, n) => {
			c.state.count += n;
			c.broadcast("newCount", c.state.count);
			return c.state.count;
		},
		getCount: (c) => c.state.count,
		getTicks: (c) => c.state.ticks,
		scheduleTick: async (c, ms) => {
			await c.schedule.after(ms, "tick");
			return true;
		},
		tick: (c) => {
			c.state.ticks += 1;
		},
		kvRoundTrip: async (c, key, value) => {
			await c.kv.put(key, value);
			return await c.kv.get(key);
		},
		goToSleep: (c) => {
			c.sleep();
			return true;
		},
		destroyMe: (c) => {
			c.destroy();
			return true;
		},
	},
	onRequest: (_c, request) => new Response(`hello ${new URL(request.url).pathname}`),
	onWebSocket: (_c, ws) => {
		ws.addEventListener("message", (e) => ws.send(`echo ${e.data}`));
	},
});

const registry = setup({ use: { counter } });
registry.start();
// A safety net: never outlive the Go test's own timeout.
setTimeout(() => process.exit(3), 90_000).unref();

const step = (name) => console.log(`step ${name}`);
const until = async (what, fn, ms = 20_000) => {
	const end = Date.now() + ms;
	for (;;) {
		const v = await fn().catch(() => undefined);
		if (v) return v;
		if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 100));
	}
};

const client = createClient({ endpoint: process.env.CLIENT_ENDPOINT, namespace: "default" });
const h = client.counter.getOrCreate(["capture"]);
const actorsOf = async (key) => {
	const r = await fetch(`${process.env.CLIENT_ENDPOINT}/actors?namespace=default&name=counter&key=${key}`);
	return (await r.json()).actors ?? [];
};

step("first-action");
await until("first action", () => h.increment(1));

step("kv");
await h.kvRoundTrip("greeting", "hi");

step("raw-http");
const res = await h.fetch("/raw/path");
console.log("raw", res.status, await res.text());

step("websocket");
const conn = h.connect();
let seen = 0;
conn.on("newCount", (n) => { seen = n; });
await conn.increment(2);
await until("event", async () => seen === 3);
await conn.dispose();

step("raw-websocket");
const raw = await h.webSocket("/echo");
await new Promise((resolve, reject) => {
	raw.addEventListener("open", resolve, { once: true });
	raw.addEventListener("error", reject, { once: true });
});
const echoed = new Promise((resolve) => raw.addEventListener("message", (e) => resolve(e.data), { once: true }));
raw.send("ping");
console.log("raw ws", await echoed);
raw.close(1000, "bye");

step("alarm");
await h.scheduleTick(300);
await until("tick", async () => (await h.getTicks()) === 1);

step("sleep");
// A connection stays open across the sleep: its socket hibernates.
const kept = h.connect();
await kept.getCount();
await h.goToSleep();
await until("sleeping", async () => (await actorsOf("capture")).some((a) => a.sleep_ts != null));
step("wake");
// A message on the hibernated socket wakes the actor.
console.log("count after wake", await kept.increment(1));
await kept.dispose();

step("destroy");
await h.destroyMe();
await until("destroyed", async () => (await actorsOf("capture")).length === 0);

step("api-destroy");
const other = client.counter.getOrCreate(["capture-api"]);
await other.increment(1);
const otherId = await other.resolve();
const del = await fetch(`${process.env.CLIENT_ENDPOINT}/actors/${otherId}?namespace=default`, { method: "DELETE" });
console.log("api destroy", del.status);
await until("api destroyed", async () => (await actorsOf("capture-api")).length === 0);

step("shutdown");
// A running actor, then a graceful runner shutdown.
await until("shutdown actor", () => client.counter.getOrCreate(["capture-shutdown"]).increment(1), 40_000);
await registry.shutdown();

step("done");
process.exit(0);
