// Port of rivetkit tests/driver/actor-onstatechange.test.ts.
import assert from "node:assert/strict";
import { matrix } from "./harness.mjs";

matrix("Actor Onstatechange", (t) => {
	t.test("triggers onStateChange when state is modified", async ({ client }) => {
		const actor = client.onStateChangeActor.getOrCreate();
		await actor.setValue(10);
		assert.equal(await actor.getChangeCount(), 1);
	});

	t.test("triggers onChange multiple times for multiple state changes", async ({ client }) => {
		const actor = client.onStateChangeActor.getOrCreate();
		await actor.setValue(1);
		await actor.setValue(2);
		await actor.setValue(3);
		assert.equal(await actor.getChangeCount(), 3);
	});

	t.test("does NOT trigger onChange for read-only actions", async ({ client }) => {
		const actor = client.onStateChangeActor.getOrCreate();
		await actor.setValue(5);
		assert.equal(await actor.getValue(), 5);
		assert.equal(await actor.getChangeCount(), 1);
	});

	t.test(
		"coalesces onStateChange to once per tick for a synchronous mutation burst",
		async ({ client }) => {
			const actor = client.onStateChangeActor.getOrCreate();
			await actor.incrementMultiple(100);
			assert.equal(await actor.getValue(), 100);
			assert.equal(await actor.getChangeCount(), 1);
		},
	);

	t.test("reading c.state returns a stable memoized proxy", async ({ client }) => {
		assert.equal(await client.onStateChangeActor.getOrCreate().stateIdentityStable(), true);
	});

	t.test("a mutation burst over large state does not pin the event loop", async ({ client }) => {
		const actor = client.onStateChangeActor.getOrCreate();
		assert.equal(await actor.seedLarge(20_000), 20_000);
		const durationMs = await actor.churn(200);
		assert.equal(typeof durationMs, "number");
		assert.ok(durationMs < 250, `churn(200) took ${durationMs} ms`);
	});

	t.test("does NOT trigger onChange for computed values", async ({ client }) => {
		const actor = client.onStateChangeActor.getOrCreate();
		await actor.setValue(3);
		assert.equal(await actor.getChangeCount(), 1);
		assert.equal(await actor.getDoubled(), 6);
		assert.equal(await actor.getChangeCount(), 1);
	});

	t.test("simple: connect, call action, dispose does NOT trigger onChange", async ({ client }) => {
		const actor = client.onStateChangeActor.getOrCreate();
		const connection = actor.connect();
		assert.equal(await connection.getValue(), 0);
		await connection.dispose();
		assert.equal(await actor.getChangeCount(), 0);
	});

	t.test("resetChangeCount (a vars-only write) does not trigger onChange", async ({ client }) => {
		const actor = client.onStateChangeActor.getOrCreate();
		await actor.setValue(1);
		await actor.resetChangeCount();
		assert.equal(await actor.getChangeCount(), 0);
		await actor.setValue(2);
		assert.equal(await actor.getChangeCount(), 1);
	});
});
