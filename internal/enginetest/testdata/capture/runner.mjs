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
});

const registry = setup({ use: { counter } });
registry.start();

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

step("alarm");
await h.scheduleTick(300);
await until("tick", async () => (await h.getTicks()) === 1);

step("sleep");
await h.goToSleep();
// Wait until the engine reports the actor asleep, then wake it.
await until("sleeping", async () => {
	const r = await fetch(`${process.env.CLIENT_ENDPOINT}/actors?namespace=default&name=counter`);
	const j = await r.json();
	return j.actors?.some((a) => a.sleep_ts != null);
});
step("wake");
console.log("count after wake", await h.getCount());

step("destroy");
await h.destroyMe();
await until("destroyed", async () => {
	const r = await fetch(`${process.env.CLIENT_ENDPOINT}/actors?namespace=default&name=counter`);
	const j = await r.json();
	return j.actors?.every((a) => a.destroy_ts != null);
});

step("done");
process.exit(0);
