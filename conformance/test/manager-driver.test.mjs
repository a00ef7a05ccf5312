// Port of rivetkit tests/driver/manager-driver.test.ts (create, get,
// getOrCreate, input, duplicate keys, key matching).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { assertActorError, matrix, rejectsWith } from "./harness.mjs";

matrix("Manager Driver", (t) => {
	t.describe("Client Connection Methods", () => {
		t.test("connect() - finds or creates a actor", async ({ client }) => {
			const counterA = client.counter.getOrCreate();
			await counterA.increment(5);
			assert.equal(await client.counter.getOrCreate().increment(0), 5);
			const counterB = client.counter.getOrCreate(["counter-b", "testing"]);
			await counterB.increment(10);
			assert.equal(await counterB.increment(0), 10);
		});

		t.test("throws ActorAlreadyExists when creating duplicate actors", async ({ client }) => {
			const uniqueKey = ["duplicate-actor-test", randomUUID()];
			const counter = client.counter.getOrCreate(uniqueKey);
			await counter.increment(5);
			const err = await rejectsWith(client.counter.create(uniqueKey), "duplicate create");
			assert.equal(err.group, "actor");
			assert.ok(
				["duplicate_key", "destroyed_during_creation"].includes(err.code),
				`code ${err.code}`,
			);
			assert.equal(await counter.increment(0), 5);
		});

		t.test(
			"duplicate key error is actor.duplicate_key on the REST API",
			// The REST body names the key itself (a fresh one): untagged.
			{ engineRawKeys: true },
			async ({ client, endpoint, namespace }) => {
				const key = `dup-rest-${randomUUID()}`;
				await client.counter.create([key]);
				const res = await fetch(`${endpoint}/actors?namespace=${encodeURIComponent(namespace)}`, {
					method: "POST",
					headers: { "content-type": "application/json" },
					body: JSON.stringify({
						name: "counter",
						key,
						runner_name_selector: "default",
						crash_policy: "sleep",
					}),
				});
				assert.equal(res.status, 400);
				const body = await res.json();
				assert.equal(body.group, "actor");
				assert.equal(body.code, "duplicate_key");
			},
		);
	});

	t.describe("Connection Options", () => {
		t.test("get without create prevents actor creation", async ({ client }) => {
			const nonexistentId = `nonexistent-${randomUUID()}`;
			const err = await rejectsWith(client.counter.get([nonexistentId]).resolve());
			assertActorError(err, { group: "actor", code: "not_found" });
			await client.counter.getOrCreate(nonexistentId).increment(3);
			assert.equal(await client.counter.get(nonexistentId).increment(0), 3);
		});

		t.test(
			"get of a missing actor fails stateless calls with actor.not_found",
			async ({ client }) => {
				const err = await rejectsWith(client.counter.get([`missing-${randomUUID()}`]).getCount());
				assertActorError(err, { group: "actor", code: "not_found" });
			},
		);

		t.test("connection params are passed to actors", async ({ client }) => {
			const counter = client.counter.getOrCreate(undefined, {
				params: { userId: "user-123", authToken: "token-abc", settings: { increment: 5 } },
			});
			await counter.increment(1);
			assert.equal(await counter.increment(0), 1);
		});
	});

	t.describe("Actor Creation & Retrieval", () => {
		t.test("creates and retrieves actors by ID", async ({ client }) => {
			const uniqueId = `test-counter-${randomUUID()}`;
			await client.counter.getOrCreate([uniqueId]).increment(10);
			assert.equal(await client.counter.getOrCreate([uniqueId]).increment(0), 10);
		});

		t.test("passes input to actor during creation", async ({ client }) => {
			const testInput = { name: "test-actor", value: 42, nested: { foo: "bar" } };
			const actor = await client.inputActor.create(undefined, { input: testInput });
			const inputs = await actor.getInputs();
			assert.deepEqual(inputs.initialInput, testInput);
			assert.deepEqual(inputs.onCreateInput, testInput);
		});

		t.test("input is undefined when not provided", async ({ client }) => {
			const actor = await client.inputActor.create();
			const inputs = await actor.getInputs();
			assert.equal(inputs.initialInput, undefined);
			assert.equal(inputs.onCreateInput, undefined);
		});

		t.test("getOrCreate passes input to actor during creation", async ({ client }) => {
			const uniqueKey = [`input-test-${randomUUID()}`];
			const testInput = { name: "getorcreate-test", value: 100, nested: { baz: "qux" } };
			const actor = client.inputActor.getOrCreate(uniqueKey, { createWithInput: testInput });
			const inputs = await actor.getInputs();
			assert.deepEqual(inputs.initialInput, testInput);
			assert.deepEqual(inputs.onCreateInput, testInput);

			const existingInputs = await client.inputActor.getOrCreate(uniqueKey).getInputs();
			assert.deepEqual(existingInputs.initialInput, testInput);
			assert.deepEqual(existingInputs.onCreateInput, testInput);
		});

		t.test("getOrCreate passes scalar and array input", async ({ client }) => {
			const a = client.inputActor.getOrCreate([`input-str-${randomUUID()}`], {
				createWithInput: "hello",
			});
			assert.equal((await a.getInputs()).initialInput, "hello");
			const b = await client.inputActor.create([`input-arr-${randomUUID()}`], {
				input: [1, "two", { three: 3 }],
			});
			assert.deepEqual((await b.getInputs()).onCreateInput, [1, "two", { three: 3 }]);
		});
	});

	t.describe("Key Matching", () => {
		// ctx.key: the key the actor sees (tagged per cell on the engine target).
		t.test("multi-part actor keys are passed through correctly", async (ctx) => {
			const multiPartKey = ["tenant/with/slash", "room"];
			assert.deepEqual(
				await ctx.client.counter.getOrCreate(multiPartKey).getKey(),
				ctx.key(multiPartKey),
			);
		});

		t.test("keys with escapes round-trip through create, get and getForId", async (ctx) => {
			const { client } = ctx;
			const key = ["a\\b", "c/d", "e"];
			const created = await client.counter.create(key);
			const id = await created.resolve();
			assert.deepEqual(await created.getKey(), ctx.key(key));
			assert.equal(await client.counter.get(key).resolve(), id);
			assert.deepEqual(await client.counter.get(key).getKey(), ctx.key(key));
			assert.deepEqual(await client.counter.getForId(id).getKey(), ctx.key(key));
		});

		t.test("matches actors only with exactly the same keys", async ({ client }) => {
			await client.counter.getOrCreate(["counter-match", "test", "us-east"]).increment(10);
			assert.equal(
				await client.counter.getOrCreate(["counter-match", "test", "us-east"]).increment(0),
				10,
			);
			assert.equal(await client.counter.getOrCreate(["counter-match", "test"]).increment(0), 0);
			assert.equal(await client.counter.getOrCreate(["counter-match"]).increment(0), 0);
		});

		t.test("string key matches array with single string key", async ({ client }) => {
			await client.counter.getOrCreate("string-key-test").increment(7);
			assert.equal(await client.counter.getOrCreate(["string-key-test"]).increment(0), 7);
		});

		t.test("undefined key matches empty array key and no key", async ({ client }) => {
			await client.counter.getOrCreate(undefined).increment(12);
			assert.equal(await client.counter.getOrCreate([]).increment(0), 12);
			assert.equal(await client.counter.getOrCreate().increment(0), 12);
		});

		t.test("no keys does not match actors with keys", async ({ client }) => {
			await client.counter.getOrCreate(["counter-with-keys", "special"]).increment(15);
			assert.equal(await client.counter.getOrCreate().increment(10), 10);
		});

		t.test("actors with keys match actors with no keys", async ({ client }) => {
			await client.counter.getOrCreate().increment(25);
			assert.equal(await client.counter.getOrCreate(["new-counter", "prod"]).increment(0), 0);
		});
	});

	t.describe("Multiple Actor Instances", () => {
		t.test("creates multiple actor instances of the same type", async ({ client }) => {
			await client.counter.getOrCreate(["multi-1"]).increment(1);
			await client.counter.getOrCreate(["multi-2"]).increment(2);
			await client.counter.getOrCreate(["multi-3"]).increment(3);
			assert.equal(await client.counter.getOrCreate(["multi-1"]).increment(0), 1);
			assert.equal(await client.counter.getOrCreate(["multi-2"]).increment(0), 2);
			assert.equal(await client.counter.getOrCreate(["multi-3"]).increment(0), 3);
		});

		t.test("handles default instance with no explicit ID", async ({ client }) => {
			await client.counter.getOrCreate().increment(5);
			assert.equal(await client.counter.getOrCreate().increment(0), 5);
		});

		t.test("namespaces isolate actors with the same key", { engineSkip: "the engine target uses one namespace: a runner serves one, and a client's fresh namespace does not exist in the engine (namespace not found)" }, async ({ client, newClient }) => {
			await client.counter.getOrCreate(["shared-key"]).increment(4);
			const other = newClient({ namespace: `conformance-other-${randomUUID()}` });
			assert.equal(await other.counter.getOrCreate(["shared-key"]).increment(0), 0);
		});
	});
});
