// Runs the conformance suite through the Rivet Engine with ONE rivet-engine
// and ONE `rivet serve --example fixtures` runner shared by every test
// file and every cell, instead of a fresh engine per file
// (`CONFORMANCE_TARGET=engine npm test`): an engine takes seconds to become
// ready, which over 25 files was a large part of a cell's time. Tests keep
// their cells (and files) apart by tagged keys (README.md, "Through the
// Rivet Engine"), so several test files can run side by side against the
// one engine.
//
//   node engine-cell.mjs [node --test options] [test files]   (default files: test/)
//
// RIVET_CONFORMANCE_ONLY picks the cells (unset: all six).
// CONFORMANCE_ENGINE_JOBS: test files run side by side (default 1).
// At the end it prints where the time went (engine/timing.mjs: per file and
// the slowest tests) and the CPU time the engine, the runner and the test
// processes used, which unlike wall time means something on a loaded
// machine. The exit code is node --test's.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

process.env.CONFORMANCE_TARGET = "engine";
const here = path.dirname(fileURLToPath(import.meta.url));
const { buildServer, startServer, stopServer, serverProcesses } = await import(
	"./test/harness.mjs"
);

/** CPU seconds of a process (utime+stime) and of its waited-for children. */
function cpu(pid) {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
		const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
		const tick = 100; // USER_HZ
		return { self: (f[11] + f[12]) / tick, children: (f[13] + f[14]) / tick };
	} catch {
		return { self: 0, children: 0 };
	}
}

const loadavg = () => os.loadavg().map((l) => l.toFixed(1)).join(" ");
const loadAtStart = loadavg();
const bin = buildServer();
const base = cpu("self"); // after the build: go build's CPU is not counted
const started = performance.now();
const endpoint = await startServer();
const ready = ((performance.now() - started) / 1000).toFixed(1);
console.log(`engine-cell: rivet-engine and its runner ready in ${ready} s at ${endpoint}`);

const jobs = Number(process.env.CONFORMANCE_ENGINE_JOBS ?? 1);
const args = process.argv.slice(2);
const child = spawn(
	process.execPath,
	[
		"--test",
		`--test-concurrency=${jobs}`,
		"--test-reporter=spec",
		"--test-reporter-destination=stdout",
		"--test-reporter=./engine/timing.mjs",
		"--test-reporter-destination=stdout",
		...args,
		...(args.some((a) => !a.startsWith("-")) ? [] : ["test/"]),
	],
	{
		cwd: here,
		stdio: "inherit",
		env: { ...process.env, RIVET_CONFORMANCE_ENDPOINT: endpoint, RIVET_CONFORMANCE_BIN: bin },
	},
);
const stop = () => child.kill("SIGTERM");
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
const code = await new Promise((resolve) => child.on("exit", (c, sig) => resolve(c ?? (sig ? 1 : 0))));
const wall = (performance.now() - started) / 1000;
const procs = Object.fromEntries(
	Object.entries(serverProcesses()).map(([role, pid]) => [role, cpu(pid).self]),
);
await stopServer();
const end = cpu("self");
const total = end.self + end.children - base.self - base.children;
const tests = total - Object.values(procs).reduce((a, b) => a + b, 0);
const parts = Object.entries({ ...procs, "node (tests, harness)": tests })
	.map(([k, v]) => `${k} ${v.toFixed(1)} s`)
	.join(", ");
console.log(
	`engine-cell: cells ${process.env.RIVET_CONFORMANCE_ONLY || "all six"}, ${jobs} file(s) at a time: ` +
		`${wall.toFixed(0)} s wall, ${total.toFixed(1)} s CPU (${parts}); ` +
		`load ${loadAtStart} at start, ${loadavg()} at end`,
);
process.exit(code);
