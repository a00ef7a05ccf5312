// Port of rivetkit tests/driver/actor-stateless.test.ts.
import assert from "node:assert/strict";
import { matrix, requestsMatching } from "./harness.mjs";

matrix("Actor Stateless", (t) => {
	t.test("can call actions on stateless actor", async ({ client }) => {
		assert.equal(await client.statelessActor.getOrCreate().ping(), "pong");
	});

	t.test("can echo messages", async ({ client }) => {
		assert.equal(await client.statelessActor.getOrCreate().echo("Hello, World!"), "Hello, World!");
	});

	t.test("can access actorId", async ({ client }) => {
		const handle = client.statelessActor.getOrCreate(["test-id"]);
		const actorId = await handle.getActorId();
		assert.equal(typeof actorId, "string");
		assert.equal(actorId, await handle.resolve());
	});

	t.test("accessing state throws StateNotEnabled", async ({ client }) => {
		const result = await client.statelessActor.getOrCreate().tryGetState();
		assert.equal(result.success, false);
		assert.match(result.error, /state/);
	});

	t.test("accessing db throws DatabaseNotEnabled", async ({ client }) => {
		const result = await client.statelessActor.getOrCreate().tryGetDb();
		assert.equal(result.success, false);
		assert.match(result.error, /database/);
	});

	t.test("multiple stateless actors can exist independently", async ({ client }) => {
		const id1 = await client.statelessActor.getOrCreate(["actor-1"]).getActorId();
		const id2 = await client.statelessActor.getOrCreate(["actor-2"]).getActorId();
		assert.notEqual(id1, id2);
	});

	t.test(
		"stateless calls through get, getOrCreate, getForId and create handles",
		async ({ client }) => {
			// 2.3.19 sends get/getOrCreate calls to the query gateway
			// (/gateway/statelessActor/action/...?rvt-*); 2.3.11 resolves with
			// PUT/GET /actors and calls /gateway/{id}/action/....
			const created = await client.statelessActor.create(["via-create"]);
			const id = await created.resolve();
			assert.equal(await created.echo("a"), "a");
			assert.equal(await client.statelessActor.get(["via-create"]).getActorId(), id);
			assert.equal(await client.statelessActor.getOrCreate(["via-create"]).getActorId(), id);
			assert.equal(await client.statelessActor.getForId(id).getActorId(), id);
		},
	);

	t.test(
		"each client version takes its own route for stateless calls",
		async ({ client, combo, namespace }) => {
			const handle = client.statelessActor.getOrCreate(["route-check"]);
			assert.equal(await handle.echo("route"), "route");
			const id = await handle.resolve();
			const ns = encodeURIComponent(namespace);
			const seen = requestsMatching(ns).concat(requestsMatching(`/gateway/${id}/`));
			const paths = seen.map(
				(r) => `${r.method} ${new URL(r.url).pathname}${new URL(r.url).search}`,
			);
			if (combo.queryGateway) {
				// 2.3.19: POST /gateway/statelessActor/action/echo?rvt-namespace=...&rvt-method=getOrCreate...
				assert.ok(
					paths.some((p) =>
						/^POST \/gateway\/statelessActor\/action\/echo\?rvt-namespace=[^&]+&rvt-method=getOrCreate&/.test(
							p,
						),
					),
					`no query-gateway action call in ${JSON.stringify(paths)}`,
				);
			} else {
				// 2.3.11: PUT /actors?namespace=..., then POST /gateway/{id}/action/echo
				assert.ok(
					paths.some((p) => p.startsWith("PUT /actors?namespace=")),
					`no PUT /actors in ${JSON.stringify(paths)}`,
				);
				assert.ok(
					paths.includes(`POST /gateway/${id}/action/echo`),
					`no direct gateway call in ${JSON.stringify(paths)}`,
				);
			}
		},
	);
});
