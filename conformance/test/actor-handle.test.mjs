// Port of rivetkit tests/driver/actor-handle.test.ts.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { assertActorError, matrix, rejectsWith } from "./harness.mjs";

const count = (events, name) => events.filter((e) => e === name).length;

matrix("Actor Handle", (t) => {
	t.describe("Access Methods", () => {
		t.test("should use .get() to access a actor", async ({ client }) => {
			await client.counter.create(["test-get-handle"]);
			const handle = client.counter.get(["test-get-handle"]);
			assert.equal(await handle.increment(5), 5);
			assert.equal(await handle.getCount(), 5);
		});

		t.test("should use .getForId() to access a actor by ID", async ({ client }) => {
			const handle = client.counter.getOrCreate(["test-get-for-id-handle"]);
			await handle.increment(3);
			const actorId = await handle.resolve();
			const idHandle = client.counter.getForId(actorId);
			assert.equal(await idHandle.getCount(), 3);
			assert.equal(await idHandle.increment(4), 7);
		});

		t.test("should use .getOrCreate() to access or create a actor", async ({ client }) => {
			const handle = client.counter.getOrCreate(["test-get-or-create-handle"]);
			assert.equal(await handle.increment(7), 7);
			const sameHandle = client.counter.getOrCreate(["test-get-or-create-handle"]);
			assert.equal(await sameHandle.getCount(), 7);
		});

		t.test("should use (await create()) to create and return a handle", async ({ client }) => {
			const handle = await client.counter.create(["test-create-handle"]);
			assert.equal(await handle.increment(9), 9);
			assert.equal(await handle.getCount(), 9);
		});

		t.test("errors when calling create twice with the same key", async ({ client }) => {
			const key = ["duplicate-create-handle", randomUUID()];
			const handle = await client.counter.create(key);
			await handle.increment(0);
			const err = await rejectsWith(client.counter.create(key), "duplicate create");
			assert.equal(err.group, "actor");
			assert.ok(
				["duplicate_key", "destroyed_during_creation"].includes(err.code),
				`code ${err.code}`,
			);
		});

		t.test(".get().resolve() errors for non-existent actor", async ({ client }) => {
			const err = await rejectsWith(client.counter.get([`nonexistent-${randomUUID()}`]).resolve());
			assertActorError(err, { group: "actor", code: "not_found" });
		});
	});

	t.describe("Action Functionality", () => {
		t.test("should call actions directly on the handle", async ({ client }) => {
			const handle = client.counter.getOrCreate(["test-action-handle"]);
			assert.equal(await handle.increment(3), 3);
			assert.equal(await handle.increment(5), 8);
			assert.equal(await handle.getCount(), 8);
		});

		t.test("should handle independent handles to the same actor", async ({ client }) => {
			const handle1 = client.counter.getOrCreate(["test-multiple-handles"]);
			const handle2 = client.counter.get(["test-multiple-handles"]);
			await handle1.increment(3);
			assert.equal(await handle2.getCount(), 3);
			assert.equal(await handle2.increment(4), 7);
			assert.equal(await handle1.getCount(), 7);
		});

		t.test("should resolve a actor's ID", async ({ client }) => {
			const handle = client.counter.getOrCreate(["test-resolve-id"]);
			await handle.increment(1);
			const actorId = await handle.resolve();
			assert.equal(typeof actorId, "string");
			assert.notEqual(actorId, "");
			assert.equal(await client.counter.getForId(actorId).getCount(), 1);
		});

		t.test("reuses one handle for many calls and resolves to the same id", async ({ client }) => {
			// Handle reuse: a handle caches its resolution (2.3.11) or keeps
			// its query (2.3.19); either way repeated calls hit one actor.
			const handle = client.counter.getOrCreate(["test-handle-reuse"]);
			const results = [];
			for (let i = 0; i < 5; i++) results.push(await handle.increment(1));
			assert.deepEqual(results, [1, 2, 3, 4, 5]);
			const [a, b] = await Promise.all([handle.resolve(), handle.resolve()]);
			assert.equal(a, b);
			assert.equal(await client.counter.get(["test-handle-reuse"]).resolve(), a);
		});
	});

	t.describe("Lifecycle Hooks", () => {
		t.test("should trigger lifecycle hooks on actor creation", async ({ client }) => {
			const handle = client.counterWithLifecycle.getOrCreate(["test-lifecycle-handle"]);
			assert.ok((await handle.getEvents()).includes("onWake"));
			const sameHandle = client.counterWithLifecycle.getOrCreate(["test-lifecycle-handle"]);
			const events = await sameHandle.getEvents();
			assert.equal(count(events, "onWake"), 1);
		});

		t.test("should trigger lifecycle hooks for each Action call", async ({ client }) => {
			const viewHandle = client.counterWithLifecycle.getOrCreate(["test-lifecycle-action"]);
			const initialEvents = await viewHandle.getEvents();
			assert.ok(initialEvents.includes("onWake"));
			for (const e of ["onBeforeConnect", "onConnect", "onDisconnect"])
				assert.ok(!initialEvents.includes(e));

			const trackingHandle = client.counterWithLifecycle.getOrCreate(["test-lifecycle-action"], {
				params: { trackLifecycle: true },
			});
			await trackingHandle.increment(5);
			const after1 = await viewHandle.getEvents();
			for (const e of ["onBeforeConnect", "onConnect", "onDisconnect"])
				assert.equal(count(after1, e), 1, e);

			await trackingHandle.increment(10);
			const after2 = await viewHandle.getEvents();
			for (const e of ["onBeforeConnect", "onConnect", "onDisconnect"])
				assert.equal(count(after2, e), 2, e);
		});

		t.test(
			"should trigger lifecycle hooks for each Action call across multiple handles",
			async ({ client }) => {
				const viewHandle = client.counterWithLifecycle.getOrCreate(["test-lifecycle-multi-handle"]);
				const opts = { params: { trackLifecycle: true } };
				const h1 = client.counterWithLifecycle.getOrCreate(["test-lifecycle-multi-handle"], opts);
				const h2 = client.counterWithLifecycle.getOrCreate(["test-lifecycle-multi-handle"], opts);
				await h1.increment(5);
				await h2.increment(10);
				const events = await viewHandle.getEvents();
				assert.equal(count(events, "onWake"), 1);
				for (const e of ["onBeforeConnect", "onConnect", "onDisconnect"])
					assert.equal(count(events, e), 2, e);
			},
		);
	});
});
