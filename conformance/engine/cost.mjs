// What one actor and one action cost the engine and the runner, in CPU
// time (meaningful on a loaded machine, unlike wall time): starts one
// rivet-engine and one `rivet serve --example fixtures` runner (the
// conformance harness's), measures their CPU while idle, while creating
// N counter actors (getOrCreate + one action each, COST_PARALLEL at a
// time) and while calling M more actions on one actor.
//
//   cd conformance && node engine/cost.mjs        (COST_ACTORS=60 COST_ACTIONS=300)
import fs from "node:fs";
import os from "node:os";

process.env.CONFORMANCE_TARGET = "engine";
const { startServer, stopServer, serverProcesses, CLIENTS } = await import("../test/harness.mjs");

function cpu(pid) {
	const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
	const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
	return (f[11] + f[12]) / 100;
}
const actors = Number(process.env.COST_ACTORS ?? 60);
const actions = Number(process.env.COST_ACTIONS ?? 300);
const parallel = Number(process.env.COST_PARALLEL ?? 6);
const endpoint = await startServer();
const pids = serverProcesses();
const snap = () => ({ engine: cpu(pids.engine), runner: cpu(pids.runner), self: process.cpuUsage(), t: performance.now() });
const diff = (a, b) => ({
	engine: b.engine - a.engine,
	runner: b.runner - a.runner,
	node: (b.self.user + b.self.system - a.self.user - a.self.system) / 1e6,
	wall: (b.t - a.t) / 1000,
});
const fmt = (d, n, what) =>
	`${what}: engine ${((d.engine / n) * 1000).toFixed(1)} ms, runner ${((d.runner / n) * 1000).toFixed(1)} ms, ` +
	`client ${((d.node / n) * 1000).toFixed(1)} ms CPU each (${n}; ${d.wall.toFixed(1)} s wall)`;

const client = CLIENTS[0].createClient({ endpoint, namespace: "default", encoding: "bare" });
const tag = `cost-${process.pid}-${Date.now()}`;
await client.counter.getOrCreate([tag, "warm"]).increment(1);

let a = snap();
await new Promise((r) => setTimeout(r, 20_000));
let b = snap();
const idle = diff(a, b);
console.log(`idle: engine ${(idle.engine / idle.wall * 100).toFixed(1)}% of a core, runner ${(idle.runner / idle.wall * 100).toFixed(1)}% (${idle.wall.toFixed(0)} s)`);

a = snap();
for (let i = 0; i < actors; i += parallel) {
	await Promise.all(
		Array.from({ length: Math.min(parallel, actors - i) }, (_, j) =>
			client.counter.getOrCreate([tag, `a${i + j}`]).increment(1),
		),
	);
}
b = snap();
console.log(fmt(diff(a, b), actors, "new actor (getOrCreate + 1 action, stateless HTTP)"));

const h = client.counter.getOrCreate([tag, "warm"]);
a = snap();
for (let i = 0; i < actions; i += parallel) {
	await Promise.all(Array.from({ length: Math.min(parallel, actions - i) }, () => h.increment(1)));
}
b = snap();
console.log(fmt(diff(a, b), actions, "action on an awake actor (stateless HTTP)"));

await client.dispose();
await stopServer();
console.log(`load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
process.exit(0);
