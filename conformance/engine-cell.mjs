// Runs the conformance suite through the Rivet Engine with ONE rivet-engine
// and ONE `rivet serve --example fixtures` runner shared by every test
// file, instead of a fresh engine per file (`CONFORMANCE_TARGET=engine npm
// test`): an engine takes seconds to become ready, which over 25 files was
// a large part of a cell's time. Tests keep their cells apart by tagged
// keys as before (README.md, "Through the Rivet Engine").
//
//   node engine-cell.mjs [node --test options] [test files]   (default files: test/)
//
// RIVET_CONFORMANCE_ONLY picks the cells (`make conformance-engine-cell`
// runs 2.3.19/bare). The exit code is node --test's.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

process.env.CONFORMANCE_TARGET = "engine";
const here = path.dirname(fileURLToPath(import.meta.url));
const { buildServer, startServer, stopServer } = await import("./test/harness.mjs");

const bin = buildServer();
const started = performance.now();
const endpoint = await startServer();
const ready = ((performance.now() - started) / 1000).toFixed(1);
console.log(`engine-cell: rivet-engine and its runner ready in ${ready} s at ${endpoint}`);

const args = process.argv.slice(2);
const child = spawn(
	process.execPath,
	["--test", "--test-concurrency=1", ...args, ...(args.some((a) => !a.startsWith("-")) ? [] : ["test/"])],
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
await stopServer();
process.exit(code);
