// Port of rivetkit tests/driver/actor-vars.test.ts.
import assert from "node:assert/strict";
import { matrix, waitFor } from "./harness.mjs";

matrix("Actor Vars", (t) => {
	t.describe("Static vars", () => {
		t.test("should provide access to static vars", async ({ client }) => {
			const instance = client.staticVarActor.getOrCreate();
			assert.deepEqual(await instance.getVars(), { counter: 42, name: "test-actor" });
			assert.equal(await instance.getName(), "test-actor");
		});
	});

	t.describe("Deep cloning of static vars", () => {
		t.test("should deep clone static vars between actor instances", async ({ client }) => {
			const instance1 = client.nestedVarActor.getOrCreate(["instance1"]);
			const instance2 = client.nestedVarActor.getOrCreate(["instance2"]);
			const modified = await instance1.modifyNested();
			assert.equal(modified.nested.value, "modified");
			assert.ok(modified.nested.array.includes(4));
			assert.equal(modified.nested.obj.key, "new-value");
			const vars2 = await instance2.getVars();
			assert.equal(vars2.nested.value, "original");
			assert.deepEqual(vars2.nested.array, [1, 2, 3]);
			assert.equal(vars2.nested.obj.key, "value");
		});
	});

	t.describe("createVars", () => {
		t.test("should support dynamic vars creation", async ({ client }) => {
			const vars = await client.dynamicVarActor.getOrCreate().getVars();
			assert.equal(typeof vars.random, "number");
			assert.equal(typeof vars.computed, "string");
			assert.match(vars.computed, /^Actor-\d+$/);
		});

		t.test("should create different vars for different instances", async ({ client }) => {
			const vars1 = await client.uniqueVarActor.getOrCreate(["test1"]).getVars();
			const vars2 = await client.uniqueVarActor.getOrCreate(["test2"]).getVars();
			assert.notEqual(vars1.id, vars2.id);
		});

		t.test("vars are recreated after a sleep", async ({ client, endpoint, namespace }) => {
			// Not upstream: vars are ephemeral, createVars runs on every start.
			const handle = client.uniqueVarActor.getOrCreate(["vars-sleep"]);
			const before = await handle.getVars();
			assert.deepEqual(await handle.getVars(), before);
			const id = await handle.resolve();
			const res = await fetch(
				`${endpoint}/actors/${encodeURIComponent(id)}/sleep?namespace=${encodeURIComponent(namespace)}`,
				{ method: "POST", headers: { "content-type": "application/json" }, body: "{}" },
			);
			assert.ok(res.ok);
			const static1 = client.nestedVarActor.getOrCreate(["vars-sleep-static"]);
			await static1.modifyNested();
			const sid = await static1.resolve();
			const res2 = await fetch(
				`${endpoint}/actors/${encodeURIComponent(sid)}/sleep?namespace=${encodeURIComponent(namespace)}`,
				{ method: "POST", headers: { "content-type": "application/json" }, body: "{}" },
			);
			assert.ok(res2.ok);
			// Through the engine POST /actors/{id}/sleep answers before the
			// actor has stopped: a call right after it may still reach the
			// awake instance. Wait for the one after the sleep.
			await waitFor(async () => {
				assert.equal((await static1.getVars()).nested.value, "original");
			});
		});
	});

	t.describe("Driver Context", () => {
		t.test("should provide access to driver context", async ({ client }) => {
			const vars = await client.driverCtxActor.getOrCreate().getVars();
			assert.ok("hasDriverCtx" in vars);
		});
	});
});
