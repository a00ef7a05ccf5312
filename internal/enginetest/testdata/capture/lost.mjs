// The RivetKit side of TestCaptureRunnerLost. ROLE=hold: serve the actor
// "lost", give it state, print "ready" and wait to be killed.
// ROLE=takeover: serve the same registry and call the actor until it
// answers again (from this runner, with its state), then exit.
import { actor, setup } from "rivetkit";
import { createClient } from "rivetkit/client";

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
const h = client.counter.getOrCreate(["lost"]);

if (process.env.ROLE === "hold") {
	console.log("step hold");
	for (;;) {
		const n = await h.increment(1).catch(() => undefined);
		if (n !== undefined) break;
		await new Promise((r) => setTimeout(r, 100));
	}
	console.log("ready");
	await new Promise(() => {});
} else {
	const start = Date.now();
	for (let attempt = 1; ; attempt++) {
		try {
			const n = await h.increment(1);
			console.log(`answered ${n} after ${Date.now() - start} ms, attempt ${attempt}`);
			break;
		} catch (e) {
			console.log(`attempt ${attempt} at ${Date.now() - start} ms: ${e?.group ?? ""}.${e?.code ?? ""} ${String(e?.message ?? e).slice(0, 120)}`);
			await new Promise((r) => setTimeout(r, 250));
		}
	}
	console.log("step done");
	process.exit(0);
}
