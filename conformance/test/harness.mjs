// Conformance harness: builds the Go server, runs it on a free loopback
// port with a fresh data directory, and runs every behaviour test against
// the client matrix (rivetkit 2.3.19 and the 2.3.11 client bundled by
// @rivetkit/react) x (json, cbor, bare).
//
// Each test file calls `matrix(name, (t) => { t.test(...) })`. The server is
// started once per test file (before its first test) and stopped after its
// last one, also when tests fail; an exit handler kills it if the process
// dies some other way. The Go binary is built once per `node --test` run and
// shared by the test files of that run.
//
// CONFORMANCE_TARGET=engine runs the same tests through a real Rivet Engine
// (rivet-engine on a file store, started once per test file) with
// `rivet serve --example fixtures` as its runner: the clients talk to the
// engine's guard. A runner serves one engine namespace, so each matrix cell
// gets a namespace of its own (created through the engine's API) and a
// runner process connected to it; a few are started ahead of time.
//
// Environment:
//   CONFORMANCE_TARGET=embedded|engine  what the clients talk to (default embedded)
//   RIVET_ENGINE_BIN            rivet-engine binary (default: the one `make engine` installed)
//   RIVET_CONFORMANCE_ENDPOINT  use this running server instead of building one
//   RIVET_CONFORMANCE_BIN       use this rivet binary instead of building one
//   RIVET_CONFORMANCE_SERVER_LOG=1  copy the server's (engine's, runners') log to stderr
//   RIVET_CONFORMANCE_ONLY=2.3.19/json,...  run only these matrix cells
//   CONFORMANCE_SUBSET=N        only the first N runnable tests of each suite
//   RIVET_LOG_LEVEL             rivetkit client log level (default: silent)
//
// When node --test runs this file itself (it lives in test/), it checks that
// the server boots and answers GET /metadata.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

// The rivetkit client reads its log level lazily; keep test output readable.
process.env.RIVET_LOG_LEVEL ??= "silent";

const here = path.dirname(fileURLToPath(import.meta.url));
export const conformanceRoot = path.resolve(here, "..");
export const repoRoot = path.resolve(conformanceRoot, "..");

/** What the clients talk to: "embedded" (rivet serve) or "engine". */
export const TARGET = process.env.CONFORMANCE_TARGET || "embedded";
assert.ok(
	["embedded", "engine"].includes(TARGET),
	`CONFORMANCE_TARGET=${TARGET}: want embedded or engine`,
);

// ---------------------------------------------------------------------------
// The two clients.

function readJSON(file) {
	return JSON.parse(fs.readFileSync(file, "utf8"));
}

/** Resolves the ESM entry of a package's "./client" export, by file path. */
function clientEntry(pkgDir) {
	const pkg = readJSON(path.join(pkgDir, "package.json"));
	const exp = pkg.exports?.["./client"];
	const rel =
		exp?.import?.default ??
		(typeof exp?.import === "string" ? exp.import : undefined) ??
		exp?.default;
	assert.ok(rel, `${pkgDir}: no ESM "./client" export`);
	return { version: pkg.version, file: path.join(pkgDir, rel) };
}

const mainPkgDir = path.join(conformanceRoot, "node_modules", "rivetkit");
const reactPkgDir = path.join(
	conformanceRoot,
	"node_modules",
	"@rivetkit",
	"react",
	"node_modules",
	"rivetkit",
);
const mainEntry = clientEntry(mainPkgDir);
const reactEntry = clientEntry(reactPkgDir);
assert.equal(mainEntry.version, "2.3.19", "rivetkit must be 2.3.19");
assert.equal(reactEntry.version, "2.3.11", "@rivetkit/react must bundle rivetkit 2.3.11");

const mainClient = await import("rivetkit/client");
const reactClient = await import(pathToFileURL(reactEntry.file).href);

export const CLIENTS = [
	{
		name: mainEntry.version,
		createClient: mainClient.createClient,
		// 2.3.19 sends stateless calls on get/getOrCreate handles to the
		// query gateway (/gateway/{name}/...?rvt-*).
		queryGateway: true,
	},
	{
		name: reactEntry.version,
		createClient: reactClient.createClient,
		// 2.3.11 resolves with PUT/GET /actors, then uses /gateway/{id}/....
		queryGateway: false,
	},
];
export const ENCODINGS = ["json", "cbor", "bare"];

export const COMBOS = CLIENTS.flatMap((c) =>
	ENCODINGS.map((encoding) => ({
		client: c.name,
		encoding,
		label: `${c.name}/${encoding}`,
		target: TARGET,
		createClient: c.createClient,
		queryGateway: c.queryGateway,
	})),
).filter((combo) => {
	const only = process.env.RIVET_CONFORMANCE_ONLY;
	return !only || only.split(",").includes(combo.label);
});

// ---------------------------------------------------------------------------
// Building the server (once per node --test run).

function processStartTime(pid) {
	try {
		// Field 22 of /proc/PID/stat; the comm field (2) may hold spaces.
		const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
		return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
	} catch {
		return "";
	}
}

function pidAlive(pid) {
	try {
		process.kill(pid, 0);
		return true;
	} catch (err) {
		return err.code === "EPERM";
	}
}

const BUILD_PREFIX = "rivetgo-conformance-";

/** Removes the build directories of runs whose test runner is gone. */
function removeStaleBuilds() {
	for (const name of fs.readdirSync(os.tmpdir())) {
		if (!name.startsWith(BUILD_PREFIX)) continue;
		const [pid, start] = name.slice(BUILD_PREFIX.length).split("-");
		if (!/^\d+$/.test(pid)) continue;
		if (pidAlive(Number(pid)) && processStartTime(Number(pid)) === (start ?? "")) {
			continue;
		}
		fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
	}
}

function sleepSync(ms) {
	Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

let builtBinary;

/**
 * Builds `go build -o <tmp>/rivet ./cmd/rivet` from the repository root.
 * Test files run as children of one `node --test` process: the build is
 * keyed by that parent, so the first file builds and the others reuse it.
 */
export function buildServer() {
	if (process.env.RIVET_CONFORMANCE_BIN) return process.env.RIVET_CONFORMANCE_BIN;
	if (builtBinary) return builtBinary;
	removeStaleBuilds();
	const runner = process.ppid;
	const dir = path.join(os.tmpdir(), `${BUILD_PREFIX}${runner}-${processStartTime(runner)}`);
	fs.mkdirSync(dir, { recursive: true });
	const bin = path.join(dir, "rivet");
	const done = path.join(dir, "built");
	const failed = path.join(dir, "failed");
	const lock = path.join(dir, "lock");
	const deadline = Date.now() + 10 * 60_000;
	for (;;) {
		if (fs.existsSync(done)) return (builtBinary = bin);
		if (fs.existsSync(failed)) {
			throw new Error(`go build failed:\n${fs.readFileSync(failed, "utf8")}`);
		}
		try {
			fs.mkdirSync(lock);
		} catch (err) {
			if (err.code !== "EEXIST") throw err;
			if (Date.now() > deadline) throw new Error("timed out waiting for go build");
			sleepSync(200);
			continue;
		}
		try {
			execFileSync("go", ["build", "-o", `${bin}.tmp`, "./cmd/rivet"], {
				cwd: repoRoot,
				stdio: ["ignore", "pipe", "pipe"],
				maxBuffer: 64 * 1024 * 1024,
			});
			fs.renameSync(`${bin}.tmp`, bin);
			fs.writeFileSync(done, "");
			return (builtBinary = bin);
		} catch (err) {
			fs.writeFileSync(failed, String(err.stderr ?? err.message));
			throw new Error(`go build failed:\n${err.stderr ?? err.message}`);
		}
	}
}

// ---------------------------------------------------------------------------
// Running the server.

function freePort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.unref();
		srv.on("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

const running = new Set();
process.on("exit", () => {
	for (const s of running) {
		try {
			s.child.kill("SIGKILL");
		} catch {}
		if (s.dataDir) fs.rmSync(s.dataDir, { recursive: true, force: true });
	}
});

/** The endpoint of the server of this test file (set by startServer). */
export let endpoint;
let server;

async function metadataAnswers(url) {
	try {
		const res = await fetch(`${url}/metadata`, { signal: AbortSignal.timeout(2000) });
		await res.body?.cancel();
		return res.ok;
	} catch {
		return false;
	}
}

async function spawnServer(bin) {
	const port = await freePort();
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "rivetgo-conformance-data-"));
	const url = `http://127.0.0.1:${port}`;
	const child = spawn(
		bin,
		["serve", "--example", "fixtures", "--listen", `127.0.0.1:${port}`, "--data", dataDir],
		// Each cell uses a fresh namespace: allow any.
		{ cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RIVET_NAMESPACES: "*" } },
	);
	const s = { child, dataDir, url, log: "", exited: false };
	running.add(s);
	const keep = (chunk) => {
		s.log = (s.log + chunk).slice(-200_000);
		if (process.env.RIVET_CONFORMANCE_SERVER_LOG) process.stderr.write(chunk);
	};
	child.stdout.setEncoding("utf8").on("data", keep);
	child.stderr.setEncoding("utf8").on("data", keep);
	s.exitPromise = new Promise((resolve) =>
		child.on("exit", (code, signal) => {
			s.exited = true;
			resolve({ code, signal });
		}),
	);
	const deadline = Date.now() + 30_000;
	while (!(await metadataAnswers(url))) {
		if (s.exited) {
			running.delete(s);
			fs.rmSync(dataDir, { recursive: true, force: true });
			const err = new Error(`server exited before answering /metadata:\n${s.log}`);
			err.retryable = /address already in use/.test(s.log);
			throw err;
		}
		if (Date.now() > deadline) {
			await stopProcess(s);
			throw new Error(`server did not answer GET /metadata within 30 s:\n${s.log}`);
		}
		await sleep(50);
	}
	return s;
}

async function stopProcess(s) {
	running.delete(s);
	if (!s.exited) {
		s.child.kill("SIGTERM");
		let timer;
		const killed = await Promise.race([
			s.exitPromise,
			new Promise((resolve) => {
				timer = setTimeout(() => resolve(null), 5000);
			}),
		]);
		clearTimeout(timer);
		if (!killed) {
			s.child.kill("SIGKILL");
			await s.exitPromise;
		}
	}
	if (s.dataDir) fs.rmSync(s.dataDir, { recursive: true, force: true });
}

/** Starts the server (once per process) and returns its endpoint. */
export async function startServer() {
	if (process.env.RIVET_CONFORMANCE_ENDPOINT) {
		endpoint = process.env.RIVET_CONFORMANCE_ENDPOINT.replace(/\/$/, "");
		return endpoint;
	}
	if (server) return endpoint;
	const bin = buildServer();
	for (let attempt = 1; ; attempt++) {
		try {
			server = TARGET === "engine" ? await spawnEngine() : await spawnServer(bin);
			break;
		} catch (err) {
			if (!err.retryable || attempt >= 3) throw err;
		}
	}
	endpoint = server.url;
	if (TARGET === "engine") runner = await startRunner(endpoint, "default");
	return endpoint;
}

/** Stops the server started by startServer (and, on the engine, its runners). */
export async function stopServer() {
	const s = server;
	server = undefined;
	const r = runner;
	runner = undefined;
	if (r) await stopProcess(r);
	if (s) await stopProcess(s);
}

/** The processes startServer started, by role (engine-cell.mjs reads their CPU time). */
export function serverProcesses() {
	const out = {};
	if (server) out[TARGET === "engine" ? "engine" : "server"] = server.child.pid;
	if (runner) out.runner = runner.child.pid;
	return out;
}

/** The server's log so far (for diagnostics). */
export function serverLog() {
	return server?.log ?? "";
}

// ---------------------------------------------------------------------------
// The engine target: rivet-engine plus one `rivet serve` runner per cell.

/** The rivet-engine binary: RIVET_ENGINE_BIN, else the one `make engine` installed. */
export function engineBinary() {
	if (process.env.RIVET_ENGINE_BIN) return process.env.RIVET_ENGINE_BIN;
	const plat = {
		"linux/x64": "engine-cli-linux-x64-musl",
		"linux/arm64": "engine-cli-linux-arm64-musl",
		"darwin/x64": "engine-cli-darwin-x64",
		"darwin/arm64": "engine-cli-darwin-arm64",
	}[`${process.platform}/${process.arch}`];
	assert.ok(plat, `no rivet-engine build for ${process.platform}/${process.arch}`);
	const bin = path.join(
		repoRoot,
		"internal/enginetest/npm/node_modules/@rivetkit",
		plat,
		"rivet-engine",
	);
	assert.ok(
		fs.existsSync(bin),
		`rivet-engine not installed at ${bin} (run \`make engine\`, or set RIVET_ENGINE_BIN)`,
	);
	return bin;
}

function keepLog(s, prefix) {
	return (chunk) => {
		s.log = (s.log + chunk).slice(-200_000);
		if (process.env.RIVET_CONFORMANCE_SERVER_LOG) {
			process.stderr.write(prefix ? chunk.replace(/^(?=.)/gm, prefix) : chunk);
		}
	};
}

async function getJSON(url) {
	try {
		const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
		if (!res.ok) {
			await res.body?.cancel();
			return undefined;
		}
		return await res.json();
	} catch {
		return undefined;
	}
}

/**
 * Whether the engine is ready for writes: /health answers, the default
 * namespace exists and the datacenter's epoxy replica is active (before
 * that, namespace and runner-config writes fail or leave the engine unable
 * to place actors; internal/enginetest waits for the same three).
 */
async function engineReady(guard, peer) {
	if (!(await getJSON(`${guard}/health`))) return false;
	const ns = await getJSON(`${guard}/namespaces?name=default`);
	if (ns?.namespaces?.[0]?.name !== "default") return false;
	const st = await getJSON(`${peer}/epoxy/coordinator/state`);
	const replicas = st?.config?.replicas ?? [];
	return replicas.length > 0 && replicas.every((r) => r.status === "Active");
}

/** Starts rivet-engine on a fresh file store and free loopback ports. */
async function spawnEngine() {
	const bin = engineBinary();
	const [guard, peer, metrics] = [await freePort(), await freePort(), await freePort()];
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "rivetgo-conformance-engine-"));
	const listen = (port) => ({ host: "127.0.0.1", port });
	const url = `http://127.0.0.1:${guard}`;
	const peerURL = `http://127.0.0.1:${peer}`;
	const config = {
		guard: listen(guard),
		api_peer: listen(peer),
		metrics: listen(metrics),
		telemetry: { enabled: false },
		topology: {
			datacenter_label: 1,
			datacenters: {
				default: { datacenter_label: 1, is_leader: true, public_url: url, peer_url: peerURL },
			},
		},
		file_system: { path: path.join(dataDir, "db") },
		// The engine admits fewer workflows as host CPU use rises (5% above
		// 90%); on a loaded CI machine it then stops creating actors after
		// a handful (route_resolve_query_timeout). A flat curve admits all.
		runtime: { worker_load_shedding_curve: [[0, 1000], [1000, 999]] },
	};
	const configFile = path.join(dataDir, "config.json");
	fs.writeFileSync(configFile, JSON.stringify(config));
	// The engine reads RIVET__* variables as config overrides.
	const env = Object.fromEntries(
		Object.entries(process.env).filter(([k]) => !k.startsWith("RIVET__")),
	);
	const child = spawn(bin, ["start", "--config", configFile], {
		cwd: dataDir,
		stdio: ["ignore", "pipe", "pipe"],
		env,
	});
	const s = { child, dataDir, url, log: "", exited: false };
	running.add(s);
	const keep = keepLog(s, "engine| ");
	child.stdout.setEncoding("utf8").on("data", keep);
	child.stderr.setEncoding("utf8").on("data", keep);
	s.exitPromise = new Promise((resolve) =>
		child.on("exit", (code, signal) => {
			s.exited = true;
			resolve({ code, signal });
		}),
	);
	const deadline = Date.now() + 60_000;
	while (!(await engineReady(url, peerURL))) {
		if (s.exited) {
			running.delete(s);
			fs.rmSync(dataDir, { recursive: true, force: true });
			const err = new Error(`rivet-engine exited before it was ready:\n${s.log.slice(-20_000)}`);
			err.retryable = /address already in use|Address in use/i.test(s.log);
			throw err;
		}
		if (Date.now() > deadline) {
			await stopProcess(s);
			throw new Error(`rivet-engine not ready within 60 s:\n${s.log.slice(-20_000)}`);
		}
		await sleep(100);
	}
	return s;
}

/**
 * Starts `rivet serve --example fixtures` as a runner of the engine in
 * namespace `namespace` and resolves once it is connected. (The runner
 * upserts its pool's runner config itself.)
 */
async function startRunner(engineURL, namespace) {
	const bin = buildServer();
	const child = spawn(bin, ["serve", "--example", "fixtures"], {
		cwd: repoRoot,
		stdio: ["ignore", "pipe", "pipe"],
		env: { ...process.env, RIVET_ENGINE: engineURL, RIVET_NAMESPACE: namespace },
	});
	const s = { child, url: engineURL, namespace, log: "", exited: false };
	running.add(s);
	const keep = keepLog(s, "runner| ");
	child.stdout.setEncoding("utf8").on("data", keep);
	child.stderr.setEncoding("utf8").on("data", keep);
	s.exitPromise = new Promise((resolve) =>
		child.on("exit", (code, signal) => {
			s.exited = true;
			resolve({ code, signal });
		}),
	);
	const deadline = Date.now() + 60_000;
	while (!s.log.includes("connected to the engine")) {
		if (s.exited) {
			running.delete(s);
			throw new Error(`runner exited before it connected:\n${s.log}`);
		}
		if (Date.now() > deadline) {
			await stopProcess(s);
			throw new Error(`runner did not connect within 60 s:\n${s.log}`);
		}
		await sleep(20);
	}
	return s;
}

let runner;

/** The engine's runner log so far (for diagnostics). */
export function runnerLog() {
	return runner?.log ?? "";
}

/** Actor names whose fixtures are called by other fixtures with a fixed key. */
const SHARED_KEY_ACTORS = /Observer$/;

/**
 * Appends the cell's tag to every actor key (`["a"]` becomes
 * `["a", tag]`): on the engine target all cells share one namespace, so the
 * tag keeps upstream's fixed keys of different cells apart. Observer
 * actors, which fixtures call with a fixed key, are left alone.
 */
function tagKeyOf(key, tag) {
	return key === undefined ? [tag] : Array.isArray(key) ? [...key, tag] : [key, tag];
}

function tagKeys(client, tag) {
	const tagged = (key) => tagKeyOf(key, tag);
	const accessors = new Map();
	return new Proxy(client, {
		get(target, prop) {
			const v = Reflect.get(target, prop);
			if (typeof prop !== "string" || SHARED_KEY_ACTORS.test(prop)) {
				return typeof v === "function" ? v.bind(target) : v;
			}
			if (v && typeof v.getOrCreate === "function") {
				if (!accessors.has(prop)) {
					accessors.set(prop, {
						get: (key, opts) => v.get(tagged(key), opts),
						getOrCreate: (key, opts) => v.getOrCreate(tagged(key), opts),
						create: (key, opts) => v.create(tagged(key), opts),
						getForId: (id, opts) => v.getForId(id, opts),
					});
				}
				return accessors.get(prop);
			}
			return typeof v === "function" ? v.bind(target) : v;
		},
	});
}

// ---------------------------------------------------------------------------
// HTTP request log: the clients call the global fetch, so wrapping it shows
// which routes each client version takes (query gateway, PUT /actors...).

const realFetch = globalThis.fetch;
const requestLog = [];
globalThis.fetch = function loggedFetch(input, init) {
	const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
	const method =
		init?.method ?? (typeof input === "object" && "method" in input ? input.method : "GET");
	requestLog.push({ method: method.toUpperCase(), url });
	if (requestLog.length > 20_000) requestLog.splice(0, 10_000);
	return realFetch(input, init);
};

/** Requests made so far (method, absolute URL) whose URL contains `needle`. */
export function requestsMatching(needle) {
	return requestLog.filter((r) => r.url.includes(needle));
}

// ---------------------------------------------------------------------------
// Small async helpers.

export function sleep(ms) {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Calls fn until it stops throwing (like vitest's vi.waitFor), every
 * `interval` ms, for at most `timeout` ms; then rethrows its last error.
 */
export async function waitFor(fn, { timeout = 10_000, interval = 50 } = {}) {
	const deadline = Date.now() + timeout;
	for (;;) {
		try {
			return await fn();
		} catch (err) {
			if (Date.now() + interval > deadline) throw err;
		}
		await sleep(interval);
	}
}

/** Rejects when promise does not settle within ms. */
export function withTimeout(promise, ms, what = "operation") {
	let timer;
	return Promise.race([
		promise,
		new Promise((_, reject) => {
			timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
		}),
	]).finally(() => clearTimeout(timer));
}

/** Awaits a promise that must reject and returns its error. */
export async function rejectsWith(promise, what = "call") {
	try {
		const value = await promise;
		assert.fail(`${what} resolved with ${JSON.stringify(value)} instead of rejecting`);
	} catch (err) {
		if (err instanceof assert.AssertionError) throw err;
		return err;
	}
}

/** Asserts an ActorError's group and code (and message when given). */
export function assertActorError(err, { group, code, message }) {
	const got = { group: err?.group, code: err?.code };
	const want = { group: group ?? err?.group, code };
	assert.deepEqual(got, want, `unexpected error: ${err?.stack ?? err}`);
	if (message !== undefined) {
		if (message instanceof RegExp) assert.match(err.message, message);
		else assert.equal(err.message, message);
	}
}

/** Resolves with the first `count` values of an event. */
export function collectEvents(conn, eventName, count) {
	return new Promise((resolve) => {
		const values = [];
		const unsubscribe = conn.on(eventName, (value) => {
			values.push(value);
			if (values.length === count) {
				unsubscribe();
				resolve(values);
			}
		});
	});
}

/** Plain JSON-ish copy (decoders may build objects with other prototypes). */
export function plain(v) {
	return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

// ---------------------------------------------------------------------------
// Raw WebSocket helpers (handle.webSocket() returns a WHATWG-style socket).

/** Opens a raw WebSocket and waits until it is open. */
export async function openRawWebSocket(ctx, handle, pathArg) {
	const ws = await (pathArg === undefined ? handle.webSocket() : handle.webSocket(pathArg));
	ctx.cleanup(() => {
		try {
			ws.close();
		} catch {}
	});
	if (ws.readyState !== 1) {
		await withTimeout(
			new Promise((resolve, reject) => {
				ws.addEventListener("open", () => resolve(), { once: true });
				ws.addEventListener(
					"error",
					(e) => reject(new Error(`websocket error: ${e?.message ?? e}`)),
					{
						once: true,
					},
				);
				ws.addEventListener(
					"close",
					(e) => reject(new Error(`websocket closed before open: ${e.code} ${e.reason}`)),
					{ once: true },
				);
			}),
			10_000,
			"websocket open",
		);
	}
	return ws;
}

function messageText(data) {
	if (typeof data === "string") return data;
	if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
	if (ArrayBuffer.isView(data))
		return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8");
	return String(data);
}

/** Queues a socket's messages so tests can await them in order. */
export function messageQueue(ws) {
	const queue = [];
	const waiters = [];
	let closed;
	ws.addEventListener("message", (event) => {
		const w = waiters.shift();
		if (w) w.resolve(event.data);
		else queue.push(event.data);
	});
	ws.addEventListener("close", (event) => {
		closed = event;
		for (const w of waiters.splice(0)) {
			w.reject(new Error(`websocket closed: ${event.code} ${event.reason}`));
		}
	});
	const next = (timeout = 10_000) => {
		if (queue.length) return Promise.resolve(queue.shift());
		if (closed)
			return Promise.reject(new Error(`websocket closed: ${closed.code} ${closed.reason}`));
		return withTimeout(
			new Promise((resolve, reject) => waiters.push({ resolve, reject })),
			timeout,
			"websocket message",
		);
	};
	return {
		next,
		/** Next message parsed as JSON. */
		async json(timeout) {
			return JSON.parse(messageText(await next(timeout)));
		},
		/** Skips messages until one of the given JSON type arrives. */
		async ofType(type, timeout = 10_000) {
			const deadline = Date.now() + timeout;
			for (;;) {
				const msg = JSON.parse(messageText(await next(Math.max(1, deadline - Date.now()))));
				if (msg?.type === type) return msg;
			}
		},
		get closed() {
			return closed;
		},
	};
}

/** Closes a socket and waits for its close event. */
export async function closeRawWebSocket(ws) {
	if (ws.readyState === 3) return;
	const closed = new Promise((resolve) =>
		ws.addEventListener("close", () => resolve(), { once: true }),
	);
	ws.close();
	await withTimeout(closed, 5000, "websocket close");
}

/** Waits for a socket's close event and returns it. */
export function closeEvent(ws, timeout = 10_000) {
	return withTimeout(
		new Promise((resolve) => ws.addEventListener("close", (e) => resolve(e), { once: true })),
		timeout,
		"websocket close",
	);
}

// ---------------------------------------------------------------------------
// The matrix.

const DEFAULT_TIMEOUT = 60_000;

// Clients not yet disposed (a timed-out test never reaches its cleanup).
const liveClients = new Set();

// After the last test of the file: dispose leftover clients (their
// reconnect loops would keep the process alive), stop the server, and if
// something still holds the event loop, exit anyway so the run cannot hang.
after(async () => {
	await Promise.allSettled(
		[...liveClients].map((c) => withTimeout(c.dispose(), 5000, "client.dispose")),
	);
	await stopServer();
	setTimeout(() => process.exit(), 5000).unref();
});

/**
 * Declares one test file's suite (`fileOpts`: default options of its
 * tests). `body(t)` declares tests with
 * `t.test(name, [options], fn)` and groups with `t.describe(name, fn)`.
 * Each test runs once per matrix cell, as a subtest named after the cell
 * ("2.3.19/json", ...); by default the cells of one test run concurrently,
 * each with its own client and a fresh namespace.
 *
 * Options of t.test:
 *   todo: string | (combo) => string | undefined   known server bug (reason)
 *   skip: string | (combo) => string | undefined
 *   engineTodo, engineSkip: the same, only for CONFORMANCE_TARGET=engine
 *     (what the runner mode does not do yet)
 *   sequential: true   run the cells one after the other
 *   engineRawKeys: true   on the engine target, do not tag keys (for tests
 *     whose fixtures report c.key to an observer); the cells then run one
 *     after the other
 *   timeout: ms per cell (default 60 s)
 *
 * fn receives ctx = { client, endpoint, namespace, combo, newClient(opts), key(k),
 * cleanup(fn) }.
 */
export function matrix(name, body, fileOpts = {}) {
	subsetLeft = SUBSET;
	describe(name, () => {
		before(async () => {
			await startServer();
		});
		after(async () => {
			await stopServer();
		});
		const api = {
			test(testName, opts, fn) {
				if (typeof opts === "function") [opts, fn] = [{}, opts];
				defineMatrixTest(testName, { ...fileOpts, ...opts }, fn);
			},
			describe(groupName, groupBody) {
				describe(groupName, () => groupBody(api));
			},
		};
		body(api);
	});
}

function resolveOpt(value, combo) {
	return typeof value === "function" ? value(combo) : value;
}

// CONFORMANCE_SUBSET=N: each matrix() suite declares only its first N tests
// that run on this target (not todo or skip): a run that still covers every
// test file, for when the whole suite costs too much (README.md, "Where the time goes, and the cost").
const SUBSET = process.env.CONFORMANCE_SUBSET ? Number(process.env.CONFORMANCE_SUBSET) : Infinity;
let subsetLeft = SUBSET;

function defineMatrixTest(testName, opts, fn) {
	if (SUBSET !== Infinity) {
		const marked = (o) => o !== undefined;
		const first = COMBOS[0];
		if (
			first &&
			(marked(resolveOpt(opts.todo, first)) ||
				marked(resolveOpt(opts.skip, first)) ||
				(TARGET === "engine" &&
					(marked(resolveOpt(opts.engineTodo, first)) || marked(resolveOpt(opts.engineSkip, first)))))
		) {
			return;
		}
		if (subsetLeft <= 0) return;
		subsetLeft--;
	}
	const sequential = opts.sequential || (TARGET === "engine" && opts.engineRawKeys);
	describe(testName, { concurrency: !sequential }, () => {
		for (const combo of COMBOS) {
			const todo =
				resolveOpt(opts.todo, combo) ??
				(TARGET === "engine" ? resolveOpt(opts.engineTodo, combo) : undefined);
			const skip =
				resolveOpt(opts.skip, combo) ??
				(TARGET === "engine" ? resolveOpt(opts.engineSkip, combo) : undefined);
			it(combo.label, { todo, skip, timeout: opts.timeout ?? DEFAULT_TIMEOUT }, async () => {
				const cleanups = [];
				// The engine target: one runner serves one namespace, so all
				// cells share "default" and keys carry a per-cell tag instead.
				const engine = TARGET === "engine";
				const namespace = engine ? "default" : `conformance-${randomUUID()}`;
				const cellTag = `cell-${randomUUID()}`;
				const clients = [];
				const newClient = (extra = {}) => {
					const c = combo.createClient({
						endpoint,
						namespace,
						encoding: combo.encoding,
						...extra,
					});
					clients.push(c);
					liveClients.add(c);
					return engine && !opts.engineRawKeys ? tagKeys(c, cellTag) : c;
				};
				const ctx = {
					combo,
					endpoint,
					namespace,
					newClient,
					client: newClient(),
					// The key a fixed key becomes on this cell (see tagKeys).
					key: (k) => (engine && !opts.engineRawKeys ? tagKeyOf(k, cellTag) : k),
					cleanup: (f) => cleanups.push(f),
				};
				try {
					await fn(ctx);
				} finally {
					for (const f of cleanups.reverse()) {
						try {
							await f();
						} catch {}
					}
					await Promise.allSettled(
						clients.map((c) => withTimeout(c.dispose(), 5000, "client.dispose")),
					);
					for (const c of clients) liveClients.delete(c);
				}
			});
		}
	});
}

// ---------------------------------------------------------------------------
// Run directly by node --test: the harness itself works.

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
	describe("harness", () => {
		after(stopServer);
		it(`builds the server, starts it (${TARGET}) and GET /metadata answers JSON`, async () => {
			const url = await startServer();
			if (TARGET === "engine") {
				// The runner is connected and listed by the engine.
				const res = await fetch(`${url}/envoys?namespace=default`);
				assert.equal(res.status, 200);
				assert.equal((await res.json()).envoys.length, 1);
			}
			const res = await fetch(`${url}/metadata?namespace=default`);
			assert.equal(res.status, 200);
			assert.match(res.headers.get("content-type") ?? "", /application\/json/);
			const body = await res.json();
			assert.equal(typeof body, "object");
			// A clientEndpoint would redirect the clients elsewhere.
			assert.equal(body.clientEndpoint, undefined);
		});
	});
}
