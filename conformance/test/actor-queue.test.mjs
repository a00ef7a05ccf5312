// Port of rivetkit tests/driver/actor-queue.test.ts (the parts the Go
// turn model can serve) plus canPublish.
//
// Deliberate differences (docs/concepts/queues.md):
// - a receive inside an action never waits (it would hold the actor's
//   turn); waiting receives run in background work (WaitQueue), so
//   "wait send returns completion response" is served by a background
//   worker on "tasks" instead of a waiting action;
// - a received message leaves the queue in the receiving turn's commit,
//   so the "manual receive retries when not completed" tests, the
//   previous_message_not_completed error and the abort tests are not
//   ported.
import assert from "node:assert/strict";
import { assertActorError, matrix, rejectsWith, waitFor } from "./harness.mjs";

const MANY_QUEUE_NAMES = Array.from({ length: 32 }, (_, i) => `cmd.${i}`);

matrix("Actor Queue", (t) => {
	t.test("client can send to actor queue", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["client-send"]);
		await handle.send("greeting", { hello: "world" });
		assert.deepEqual(await handle.receiveOne("greeting"), {
			name: "greeting",
			body: { hello: "world" },
		});
	});

	t.test("actor can send to its own queue", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["self-send"]);
		await handle.sendToSelf("self", { value: 42 });
		assert.deepEqual(await handle.receiveOne("self"), { name: "self", body: { value: 42 } });
	});

	t.test("nextBatch supports name arrays and counts", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["receive-array"]);
		await handle.send("a", 1);
		await handle.send("b", 2);
		await handle.send("c", 3);
		assert.deepEqual(await handle.receiveMany(["a", "b"], { count: 2 }), [
			{ name: "a", body: 1 },
			{ name: "b", body: 2 },
		]);
	});

	t.test("nextBatch supports request objects", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["receive-request"]);
		await handle.send("one", "first");
		await handle.send("two", "second");
		assert.deepEqual(await handle.receiveRequest({ names: ["one", "two"], count: 2 }), [
			{ name: "one", body: "first" },
			{ name: "two", body: "second" },
		]);
	});

	t.test("nextBatch defaults to all names when names is omitted", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["receive-request-all"]);
		await handle.send("one", "first");
		await handle.send("two", "second");
		assert.deepEqual(await handle.receiveRequest({ count: 2 }), [
			{ name: "one", body: "first" },
			{ name: "two", body: "second" },
		]);
	});

	t.test("next timeout returns empty array", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["receive-timeout"]);
		assert.deepEqual(await handle.receiveMany(["missing"], { timeout: 50 }), []);
	});

	t.test("tryNextBatch does not wait and returns empty array", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["try-next-empty"]);
		assert.deepEqual(await handle.tryReceiveMany({ names: ["missing"], count: 1 }), []);
	});

	t.test("enforces queue size limit", async ({ client }) => {
		const handle = client.queueLimitedActor.getOrCreate([`size-limit-${Math.random()}`]);
		await handle.send("message", 1);
		const err = await rejectsWith(handle.send("message", 2), "send to a full queue");
		assert.ok(err instanceof Error);
		assert.match(err.message, /Queue is full\. Limit is/);
		assertActorError(err, { group: "queue", code: "full" });
	});

	t.test("enforces message size limit", async ({ client }) => {
		const handle = client.queueLimitedActor.getOrCreate(["message-limit"]);
		const err = await rejectsWith(handle.send("oversize", "a".repeat(200)), "oversized send");
		assertActorError(err, { group: "queue", code: "message_too_large" });
	});

	t.test("wait send returns completion response", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["wait-complete"]);
		const result = await handle.send("tasks", { value: 123 }, { wait: true, timeout: 5_000 });
		assert.deepEqual(result, { status: "completed", response: { echo: { value: 123 } } });
	});

	t.test("wait send times out", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["wait-timeout"]);
		const result = await handle.send("timeout", { value: 456 }, { wait: true, timeout: 50 });
		assert.equal(result.status, "timedOut");
	});

	t.test("wait send no longer requires queue completion schema", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["missing-completion-schema"]);
		const result = await handle.send("nowait", { value: "test" }, { wait: true, timeout: 50 });
		assert.deepEqual(result, { status: "timedOut" });
	});

	t.test("complete throws when called twice", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["complete-twice"]);
		await handle.send("twice", { value: "test" });
		assert.deepEqual(await handle.receiveAndCompleteTwice("twice"), {
			group: "queue",
			code: "already_completed",
		});
	});

	t.test("a send over a connection uses the queue route", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["conn-send"]);
		const conn = handle.connect();
		try {
			await conn.send("greeting", "over conn");
			assert.deepEqual(await handle.receiveOne("greeting"), { name: "greeting", body: "over conn" });
		} finally {
			await conn.dispose();
		}
	});

	// Upstream's expectManyQueueChildToDrain, without the parent actors.
	t.test("drains a many-queue actor while connected", { engineTodo: "timed out after 60 s on the engine target (first run: both cells; again 2026-12-03 in 2.3.19/bare at load 33): many concurrent sends through the engine on a loaded machine; not investigated" }, async ({ client }) => {
		const child = client.manyQueueChildActor.getOrCreate(["many-child"]);
		const conn = child.connect();
		const messageCount = MANY_QUEUE_NAMES.length * 4;
		try {
			assert.equal((await conn.ping()).pong, true);
			await Promise.all(
				Array.from({ length: messageCount }, (_, index) =>
					child.send(MANY_QUEUE_NAMES[index % MANY_QUEUE_NAMES.length], { index }),
				),
			);
			const snapshot = await waitFor(async () => {
				const snap = await child.getSnapshot();
				assert.ok(snap.processed.length >= messageCount, `processed ${snap.processed.length} of ${messageCount}`);
				return snap;
			});
			assert.equal(snapshot.started, true);
			assert.equal(snapshot.processed.length, messageCount);
			assert.deepEqual(new Set(snapshot.processed), new Set(MANY_QUEUE_NAMES));
			assert.deepEqual(
				await child.send(MANY_QUEUE_NAMES[0], { index: messageCount }, { wait: true, timeout: 5_000 }),
				{ status: "completed", response: { ok: true, index: messageCount } },
			);
		} finally {
			await conn.dispose().catch(() => undefined);
		}
	});

	t.test("undeclared queue names are refused", async ({ client }) => {
		const handle = client.queueActor.getOrCreate(["undeclared"]);
		const err = await rejectsWith(handle.send("nope", 1), "send to an undeclared queue");
		assertActorError(err, { group: "queue", code: "not_declared" });
	});

	t.test("canPublish refuses a sender", async ({ client }) => {
		const denied = client.queuePublishActor.getOrCreate(["publish"], { params: { allow: false } });
		const err = await rejectsWith(denied.send("jobs", 1), "forbidden send");
		assertActorError(err, { group: "auth", code: "forbidden" });
		const allowed = client.queuePublishActor.getOrCreate(["publish"]);
		await allowed.send("jobs", 2);
		assert.equal(await allowed.count(), 1);
	});
});
