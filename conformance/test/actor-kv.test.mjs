// Port of rivetkit tests/driver/actor-kv.test.ts.
// listTextRange(start, end) leaves out its optional third argument, as
// upstream does.
import assert from "node:assert/strict";
import { matrix } from "./harness.mjs";

matrix("Actor Kv", (t) => {
	t.test("supports text encoding and decoding", async ({ client }) => {
		const kv = client.kvActor.getOrCreate(["kv-text"]);
		await kv.putText("greeting", "hello");
		assert.equal(await kv.getText("greeting"), "hello");
		await kv.putText("prefix-a", "alpha");
		await kv.putText("prefix-b", "beta");
		const results = (await kv.listText("prefix-")).sort((a, b) => a.key.localeCompare(b.key));
		assert.deepEqual(results, [
			{ key: "prefix-a", value: "alpha" },
			{ key: "prefix-b", value: "beta" },
		]);
	});

	t.test("getText of a missing key is null", async ({ client }) => {
		assert.equal(await client.kvActor.getOrCreate(["kv-missing"]).getText("nope"), null);
	});

	t.test("supports range scans and range deletes", async ({ client }) => {
		const kv = client.kvActor.getOrCreate(["kv-range"]);
		await kv.putText("a", "alpha");
		await kv.putText("b", "bravo");
		await kv.putText("c", "charlie");
		await kv.putText("d", "delta");
		assert.deepEqual(await kv.listTextRange("b", "d"), [
			{ key: "b", value: "bravo" },
			{ key: "c", value: "charlie" },
		]);
		assert.deepEqual(await kv.listTextRange("a", "d", { reverse: true, limit: 2 }), [
			{ key: "c", value: "charlie" },
			{ key: "b", value: "bravo" },
		]);
		await kv.deleteTextRange("b", "d");
		assert.deepEqual(await kv.listText(""), [
			{ key: "a", value: "alpha" },
			{ key: "d", value: "delta" },
		]);
	});

	t.test("supports arrayBuffer encoding and decoding", async ({ client }) => {
		const kv = client.kvActor.getOrCreate(["kv-array-buffer"]);
		assert.deepEqual(
			await kv.roundtripArrayBuffer("bytes", [4, 8, 15, 16, 23, 42]),
			[4, 8, 15, 16, 23, 42],
		);
	});

	t.test("kv data survives a sleep", async ({ client, endpoint, namespace }) => {
		const kv = client.kvActor.getOrCreate(["kv-sleep"]);
		await kv.putText("k", "v");
		const id = await kv.resolve();
		const res = await fetch(
			`${endpoint}/actors/${encodeURIComponent(id)}/sleep?namespace=${encodeURIComponent(namespace)}`,
			{ method: "POST", headers: { "content-type": "application/json" }, body: "{}" },
		);
		assert.ok(res.ok);
		assert.equal(await kv.getText("k"), "v");
	});
});
