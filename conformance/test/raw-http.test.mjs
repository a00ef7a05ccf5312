// Port of rivetkit tests/driver/raw-http.test.ts (handle.fetch).
import assert from "node:assert/strict";
import { matrix } from "./harness.mjs";

const USERS = [
	{ id: 1, name: "Alice" },
	{ id: 2, name: "Bob" },
];

matrix("Raw Http", (t) => {
	t.test("should handle raw HTTP GET requests", async ({ client }) => {
		const res = await client.rawHttpActor.getOrCreate(["test"]).fetch("api/hello");
		assert.equal(res.ok, true);
		assert.deepEqual(await res.json(), { message: "Hello from actor!" });
	});

	t.test("should handle raw HTTP POST requests with echo", async ({ client }) => {
		const testData = { test: "data", number: 123 };
		const res = await client.rawHttpActor.getOrCreate(["test"]).fetch("api/echo", {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify(testData),
		});
		assert.equal(res.ok, true);
		assert.deepEqual(await res.json(), testData);
	});

	t.test("should track state across raw HTTP requests", async ({ client }) => {
		const actor = client.rawHttpActor.getOrCreate(["state-test"]);
		for (const p of ["api/hello", "api/hello", "api/state"])
			await (await actor.fetch(p)).arrayBuffer();
		const res = await actor.fetch("api/state");
		assert.equal(res.ok, true);
		assert.equal((await res.json()).requestCount, 4);
	});

	t.test("should pass headers correctly", async ({ client }) => {
		const res = await client.rawHttpActor.getOrCreate(["headers-test"]).fetch("api/headers", {
			headers: { "X-Custom-Header": "test-value", "X-Another-Header": "another-value" },
		});
		assert.equal(res.ok, true);
		const headers = await res.json();
		assert.equal(headers["x-custom-header"], "test-value");
		assert.equal(headers["x-another-header"], "another-value");
	});

	t.test("conn params reach onRequest as x-rivet-conn-params", async ({ client }) => {
		const res = await client.rawHttpActor
			.getOrCreate(["headers-params"], { params: { token: "abc" } })
			.fetch("api/headers");
		const headers = await res.json();
		assert.deepEqual(JSON.parse(headers["x-rivet-conn-params"]), { token: "abc" });
	});

	t.test("should return 404 for unhandled paths", async ({ client }) => {
		const res = await client.rawHttpActor.getOrCreate(["404-test"]).fetch("api/nonexistent");
		assert.equal(res.ok, false);
		assert.equal(res.status, 404);
	});

	t.test("should return 404 when no onRequest handler defined", async ({ client }) => {
		const res = await client.rawHttpNoHandlerActor
			.getOrCreate(["no-handler"])
			.fetch("api/anything");
		assert.equal(res.ok, false);
		assert.equal(res.status, 404);
	});

	t.test(
		"should return 500 error when onRequest returns void",
		{
			todo:
				"the Go fixture's OnRequest writes nothing and returns nil; the gateway answers 200 with an empty " +
				"body, where upstream answers 500 'onRequest handler must return a Response'",
		},
		async ({ client }) => {
			const res = await client.rawHttpVoidReturnActor
				.getOrCreate(["void-return"])
				.fetch("api/anything");
			const text = await res.text();
			assert.equal(res.ok, false, `status ${res.status} body ${JSON.stringify(text)}`);
			assert.equal(res.status, 500);
			try {
				assert.match(JSON.parse(text).message, /onRequest handler must return a Response/);
			} catch (err) {
				if (err instanceof assert.AssertionError) throw err;
			}
		},
	);

	t.test("should handle different HTTP methods", async ({ client }) => {
		const actor = client.rawHttpActor.getOrCreate(["methods-test"]);
		for (const method of ["GET", "POST", "PUT", "DELETE", "PATCH"]) {
			const res = await actor.fetch("api/echo", {
				method,
				body: ["POST", "PUT", "PATCH"].includes(method) ? JSON.stringify({ method }) : undefined,
			});
			if (method === "POST") {
				assert.equal(res.ok, true);
				assert.deepEqual(await res.json(), { method });
			} else {
				assert.equal(res.status, 404, method);
				await res.arrayBuffer();
			}
		}
	});

	t.test("should handle binary data", async ({ client }) => {
		const res = await client.rawHttpActor.getOrCreate(["binary-test"]).fetch("api/echo", {
			method: "POST",
			headers: { "Content-Type": "application/octet-stream" },
			body: new Uint8Array([1, 2, 3, 4, 5]),
		});
		assert.equal(res.ok, true);
		assert.deepEqual(Array.from(new Uint8Array(await res.arrayBuffer())), [1, 2, 3, 4, 5]);
	});

	t.test("should work with Hono router using createVars", async ({ client }) => {
		const actor = client.rawHttpHonoActor.getOrCreate(["hono-test"]);
		let res = await actor.fetch("/");
		assert.equal(res.ok, true);
		assert.deepEqual(await res.json(), { message: "Welcome to Hono actor!" });

		res = await actor.fetch("/users");
		assert.deepEqual(await res.json(), USERS);

		res = await actor.fetch("/users/1");
		assert.deepEqual(await res.json(), { id: 1, name: "Alice" });

		res = await actor.fetch("/users", {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify({ name: "Charlie" }),
		});
		assert.equal(res.status, 201);
		assert.deepEqual(await res.json(), { id: 3, name: "Charlie" });

		res = await actor.fetch("/users/1", {
			method: "PUT",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify({ name: "Alice Updated" }),
		});
		assert.equal(res.ok, true);
		assert.deepEqual(await res.json(), { id: 1, name: "Alice Updated" });

		res = await actor.fetch("/users/2", { method: "DELETE" });
		assert.equal(res.ok, true);
		assert.deepEqual(await res.json(), { message: "User 2 deleted" });

		res = await actor.fetch("/api/unknown");
		assert.equal(res.ok, false);
		assert.equal(res.status, 404);
		await res.arrayBuffer();
	});

	t.test("should handle paths with and without leading slashes", async ({ client }) => {
		const actor = client.rawHttpActor.getOrCreate(["path-test"]);
		assert.deepEqual(await (await actor.fetch("api/hello")).json(), {
			message: "Hello from actor!",
		});
		assert.deepEqual(await (await actor.fetch("/api/hello")).json(), {
			message: "Hello from actor!",
		});
	});

	t.test("should not create double slashes in request URLs", async ({ client }) => {
		const res = await client.rawHttpHonoActor.getOrCreate(["url-test"]).fetch("/users");
		assert.equal(res.ok, true);
		assert.deepEqual(await res.json(), USERS);
	});

	t.test(
		"should handle forwarded requests correctly without double slashes",
		async ({ client }) => {
			const actor = client.rawHttpHonoActor.getOrCreate(["forward-test"]);
			const request = new Request(new URL("/users", "http://example.com"), { method: "GET" });
			const res = await actor.fetch("/users", request);
			assert.equal(res.ok, true);
			assert.deepEqual(await res.json(), USERS);
		},
	);

	t.test(
		"example fix: should properly forward requests using just Request object",
		async ({ client }) => {
			const actor = client.rawHttpHonoActor.getOrCreate(["forward-fix"]);
			const res = await actor.fetch(
				new Request(new URL("/users/1", "http://example.com"), { method: "GET" }),
			);
			assert.equal(res.ok, true);
			assert.deepEqual(await res.json(), { id: 1, name: "Alice" });
		},
	);

	t.test("should support standard fetch API with URL and Request objects", async ({ client }) => {
		const actor = client.rawHttpActor.getOrCreate(["fetch-api-test"]);
		const urlRes = await actor.fetch(new URL("/api/echo", "http://example.com"), {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify({ from: "URL object" }),
		});
		assert.equal(urlRes.ok, true);
		assert.deepEqual(await urlRes.json(), { from: "URL object" });

		const reqRes = await actor.fetch(
			new Request("http://example.com/api/echo", {
				method: "POST",
				headers: { "Content-Type": "application/json" },
				body: JSON.stringify({ from: "Request object" }),
			}),
		);
		assert.equal(reqRes.ok, true);
		assert.deepEqual(await reqRes.json(), { from: "Request object" });

		const request2 = new Request("http://example.com/api/headers", {
			method: "GET",
			headers: { "X-Original": "request-header" },
		});
		const overrideRes = await actor.fetch(request2, { headers: { "X-Override": "init-header" } });
		assert.equal(overrideRes.ok, true);
		const headers = await overrideRes.json();
		assert.equal(headers["x-override"], "init-header");
		assert.equal(headers["x-original"], "request-header");
	});
});
