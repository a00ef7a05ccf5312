// Port of rivetkit tests/driver/actor-metadata.test.ts.
import assert from "node:assert/strict";
import { matrix } from "./harness.mjs";

matrix("Actor Metadata", (t) => {
	t.describe("Actor Name", () => {
		t.test("should provide access to actor name", async ({ client }) => {
			assert.equal(await client.metadataActor.getOrCreate().getActorName(), "metadataActor");
		});

		t.test("should preserve actor name in state during onWake", async ({ client }) => {
			assert.equal(await client.metadataActor.getOrCreate().getStoredActorName(), "metadataActor");
		});
	});

	t.describe("Actor Tags", () => {
		t.test("should provide access to tags", async ({ client }) => {
			const handle = client.metadataActor.getOrCreate();
			await handle.setupTestTags({ env: "test", purpose: "metadata-test" });
			const tags = await handle.getTags();
			assert.equal(tags.env, "test");
			assert.equal(tags.purpose, "metadata-test");
		});

		t.test("should allow accessing individual tags", async ({ client }) => {
			const handle = client.metadataActor.getOrCreate();
			await handle.setupTestTags({ category: "test-actor", version: "1.0" });
			assert.equal(await handle.getTag("category"), "test-actor");
			assert.equal(await handle.getTag("version"), "1.0");
			assert.equal(await handle.getTag("nonexistent"), null);
		});
	});

	t.describe("Metadata Structure", () => {
		t.test("should provide complete metadata object", async ({ client }) => {
			const handle = client.metadataActor.getOrCreate();
			await handle.setupTestTags({ type: "metadata-test" });
			await handle.setupTestRegion("us-west-1");
			const metadata = await handle.getMetadata();
			assert.equal(metadata.name, "metadataActor");
			assert.equal(metadata.tags.type, "metadata-test");
			assert.equal(metadata.region, "us-west-1");
			assert.deepEqual(await handle.getLastMetadata(), metadata);
		});
	});

	t.describe("Region Information", () => {
		t.test("should retrieve region information", async ({ client }) => {
			const handle = client.metadataActor.getOrCreate();
			await handle.setupTestRegion("eu-central-1");
			assert.equal(await handle.getRegion(), "eu-central-1");
		});
	});

	t.describe("Key", () => {
		// ctx.key: the key the actor sees (tagged per cell on the engine target).
		t.test("actors see their own key", async ({ client, key }) => {
			assert.deepEqual(await client.counter.getOrCreate(["a", "b"]).getKey(), key(["a", "b"]));
			assert.deepEqual(await client.counter.getOrCreate().getKey(), key([]));
		});
	});
});
