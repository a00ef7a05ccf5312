// The RivetKit side of TestCaptureRunnerReconnect: serve the actor
// "reconnect", give it state, print "ready", wait for a line on stdin (the
// test cuts the runner's socket first), then call the actor until it
// answers again and exit.
import { actor, setup } from "rivetkit";
import { createClient } from "rivetkit/client";
import { createInterface } from "node:readline";

const counter = actor({
	state: { count: 0 },
	options: { sleepTimeout: 600_000 },
	actions: {
		increment: (c, n) => {
			c.state.count += n;
			return c.state.count;
		},
	},
});

const registry = setup({ use: { counter } });
registry.start();
setTimeout(() => process.exit(3), 90_000).unref();

const client = createClient({ endpoint: process.env.CLIENT_ENDPOINT, namespace: "default" });
const h = client.counter.getOrCreate(["reconnect"]);

console.log("step hold");
for (;;) {
	const n = await h.increment(1).catch(() => undefined);
	if (n !== undefined) break;
	await new Promise((r) => setTimeout(r, 100));
}
console.log("ready");
const lines = createInterface({ input: process.stdin });
for await (const _ of lines) break;
console.log("step after-cut");
const start = Date.now();
for (let attempt = 1; ; attempt++) {
	try {
		const n = await h.increment(1);
		console.log(`answered ${n} after ${Date.now() - start} ms, attempt ${attempt}`);
		break;
	} catch (e) {
		console.log(`attempt ${attempt} at ${Date.now() - start} ms: ${e?.group ?? ""}.${e?.code ?? ""}`);
		await new Promise((r) => setTimeout(r, 250));
	}
}
console.log("step done");
process.exit(0);
