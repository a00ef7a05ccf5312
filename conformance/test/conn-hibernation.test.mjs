// Not upstream: hibernating connections (docs/concepts/connections.md).
// RivetKit 2.3.19 keeps an actor awake while a client is connected; a Go
// actor sleeps after its idle timeout (examples/fixtures/hibernate.go:
// SleepTimeout 1000 ms) while the server keeps the client's socket, and the
// next message wakes it with the connection rebuilt from storage: same
// connection state, same subscriptions, no connect hooks run again.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { matrix, sleep, waitFor } from "./harness.mjs";

const SLEEP_TIMEOUT = 1000;
const key = (prefix) => [`${prefix}-${randomUUID()}`];

/** Stays idle a full sleep timeout (plus slack) before each read. */
async function afterIdle(read, pred, attempts = 5) {
	let v;
	for (let i = 0; i < attempts; i++) {
		await sleep(SLEEP_TIMEOUT + 300);
		v = await read();
		if (pred(v)) return v;
	}
	assert.fail(`state after idle: ${JSON.stringify(v)}`);
}

matrix("Connection hibernation", (t) => {
	t.test("a connected client survives its actor's sleep and wake", async ({ client }) => {
		const k = key("hib");
		const conn = client.hibernatingConn.getOrCreate(k, { params: { name: "ada" } }).connect();
		const events = [];
		conn.on("announcement", (text) => events.push(text));
		assert.deepEqual(await conn.whoami(), { name: "ada", calls: 1 });

		// The actor sleeps with the connection open (onSleep runs); a
		// stateless call wakes it.
		const other = client.hibernatingConn.getOrCreate(k);
		await afterIdle(
			() => other.getCounts(),
			(c) => c.sleepCount === 1 && c.startCount === 2,
		);
		// Events broadcast after the wake reach the hibernated connection.
		assert.equal(await other.announce("after wake"), "after wake");
		await waitFor(() => assert.deepEqual(events, ["after wake"]), { timeout: 10_000 });
		// Its state survived; the connect hooks did not run again.
		assert.deepEqual(await conn.whoami(), { name: "ada", calls: 2 });
		assert.equal((await other.getCounts()).connectCount, 1);

		// An action sent through the connection while the actor sleeps
		// wakes it and is handled exactly once.
		await sleep(SLEEP_TIMEOUT + 500);
		assert.deepEqual(await conn.whoami(), { name: "ada", calls: 3 });
		const c = await other.getCounts();
		assert.ok(c.sleepCount >= 2 && c.startCount === c.sleepCount + 1, JSON.stringify(c));
		assert.equal(c.connectCount, 1);
		await conn.dispose();
	});

	t.test("KeepAwakeWhileConnected keeps a connected actor awake", async ({ client }) => {
		const conn = client.connKeepsAwake.getOrCreate(key("awake"), { params: { name: "bo" } }).connect();
		assert.deepEqual(await conn.whoami(), { name: "bo", calls: 1 });
		await sleep(SLEEP_TIMEOUT + 500);
		assert.deepEqual(await conn.getCounts(), { startCount: 1, sleepCount: 0, connectCount: 1 });
		await conn.dispose();
	});
});
