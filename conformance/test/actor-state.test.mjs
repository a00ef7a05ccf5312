// Port of rivetkit tests/driver/actor-state.test.ts and
// actor-state-zod-coercion.test.ts: state persists between handles, across
// sleep and wake, and across forced sleeps (POST /actors/{id}/sleep).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { matrix, waitFor } from "./harness.mjs";

/** Waits until a sleeping actor has been woken again by a call. */
async function waitForWake(read, pred) {
	return await waitFor(
		async () => {
			const v = await read();
			assert.ok(pred(v), `state ${JSON.stringify(v)}`);
			return v;
		},
		{ timeout: 10_000, interval: 100 },
	);
}

matrix("Actor State", (t) => {
	t.describe("State Persistence", () => {
		t.test("persists state between actor instances", async ({ client }) => {
			assert.equal(await client.counter.getOrCreate().increment(5), 5);
			assert.equal(await client.counter.getOrCreate().increment(3), 8);
		});

		t.test("restores state after actor disconnect/reconnect", async ({ client }) => {
			await client.counter.getOrCreate().increment(5);
			assert.equal(await client.counter.getOrCreate().increment(0), 5);
		});

		t.test("maintains separate state for different actors", async ({ client }) => {
			const a = client.counter.getOrCreate(["counter-a"]);
			const b = client.counter.getOrCreate(["counter-b"]);
			await a.increment(5);
			await b.increment(10);
			assert.equal(await a.increment(0), 5);
			assert.equal(await b.increment(0), 10);
		});

		t.test(
			"keeps state when the actor is put to sleep through the REST API",
			async ({ client, endpoint, namespace }) => {
				const handle = client.counter.getOrCreate([`forced-sleep-${randomUUID()}`]);
				await handle.increment(11);
				const id = await handle.resolve();
				const res = await fetch(
					`${endpoint}/actors/${encodeURIComponent(id)}/sleep?namespace=${encodeURIComponent(namespace)}`,
					{ method: "POST", headers: { "content-type": "application/json" }, body: "{}" },
				);
				assert.ok(res.ok, `POST /actors/{id}/sleep: ${res.status} ${await res.text()}`);
				assert.equal(await handle.getCount(), 11);
				assert.equal(await client.counter.getForId(id).increment(1), 12);
			},
		);
	});

	t.describe("State Zod Coercion", () => {
		t.test("preserves state through sleep/wake with Zod coercion", async ({ client }) => {
			const actor = client.stateZodCoercionActor.getOrCreate([`zod-roundtrip-${randomUUID()}`]);
			await actor.setCount(42);
			await actor.setLabel("custom");
			await actor.triggerSleep();
			const state = await actor.getState();
			assert.equal(state.count, 42);
			assert.equal(state.label, "custom");
		});

		t.test("Zod defaults fill missing fields on wake", async ({ client }) => {
			const state = await client.stateZodCoercionActor
				.getOrCreate([`zod-defaults-${randomUUID()}`])
				.getState();
			assert.equal(state.count, 0);
			assert.equal(state.label, "default");
		});

		t.test(
			"Zod coercion preserves values after mutation and wake",
			async ({ client }) => {
			const actor = client.stateZodCoercionActor.getOrCreate([`zod-mutate-wake-${randomUUID()}`]);
			await actor.setCount(99);
			await actor.setLabel("updated");
			await actor.triggerSleep();
			const state = await actor.getState();
			assert.equal(state.count, 99);
			assert.equal(state.label, "updated");
			await actor.setLabel("second-update");
			assert.equal((await actor.getState()).label, "second-update");
			},
		);
	});

	t.describe("State across sleep", () => {
		t.test(
			"actor sleep persists state",
			async ({ client }) => {
			// The sleep fixture counts wakes (startCount) and sleeps.
			const sleepActor = client.sleep.getOrCreate([`state-sleep-${randomUUID()}`]);
			assert.deepEqual(await sleepActor.getCounts(), { startCount: 1, sleepCount: 0 });
			await sleepActor.triggerSleep();
			await waitForWake(
				() => sleepActor.getCounts(),
				(c) => c.sleepCount === 1 && c.startCount === 2,
			);
			},
		);
	});
});
