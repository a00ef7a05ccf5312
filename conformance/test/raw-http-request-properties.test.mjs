// Port of rivetkit tests/driver/raw-http-request-properties.test.ts: the
// request that onRequest sees (rawHttpRequestPropertiesActor echoes it).
import assert from "node:assert/strict";
import { matrix } from "./harness.mjs";

const actorOf = (client) => client.rawHttpRequestPropertiesActor.getOrCreate(["test"]);

matrix("Raw Http Request Properties", (t) => {
	t.test("should pass all Request properties correctly to onRequest", async ({ client }) => {
		const res = await actorOf(client).fetch("test/path?foo=bar&baz=qux", {
			method: "POST",
			headers: {
				"Content-Type": "application/json",
				"X-Custom-Header": "custom-value",
				Authorization: "Bearer test-token",
			},
			body: JSON.stringify({ test: "data" }),
		});
		assert.equal(res.ok, true);
		const data = await res.json();
		assert.ok(data.url.includes("/test/path?foo=bar&baz=qux"), data.url);
		assert.doesNotMatch(data.url, /rvt-/);
		assert.equal(data.pathname, "/test/path");
		assert.equal(data.search, "?foo=bar&baz=qux");
		assert.deepEqual(data.searchParams, { foo: "bar", baz: "qux" });
		assert.equal(data.method, "POST");
		assert.equal(data.headers["content-type"], "application/json");
		assert.equal(data.headers["x-custom-header"], "custom-value");
		assert.equal(data.headers.authorization, "Bearer test-token");
		assert.deepEqual(data.body, { test: "data" });
	});

	t.test("should handle GET requests with no body", async ({ client }) => {
		const data = await (await actorOf(client).fetch("test/get", { method: "GET" })).json();
		assert.equal(data.method, "GET");
		assert.equal(data.body, null);
	});

	t.test("should handle different content types", async ({ client }) => {
		const actor = actorOf(client);
		const form = new URLSearchParams();
		form.append("field1", "value1");
		form.append("field2", "value2");
		const formRes = await actor.fetch("test/form", {
			method: "POST",
			headers: { "Content-Type": "application/x-www-form-urlencoded" },
			body: form.toString(),
		});
		assert.equal(formRes.ok, true);
		const formResult = await formRes.json();
		assert.equal(formResult.headers["content-type"], "application/x-www-form-urlencoded");
		assert.equal(formResult.bodyText, "field1=value1&field2=value2");

		const textRes = await actor.fetch("test/text", {
			method: "POST",
			headers: { "Content-Type": "text/plain" },
			body: "Hello, World!",
		});
		const textResult = await textRes.json();
		assert.equal(textResult.headers["content-type"], "text/plain");
		assert.equal(textResult.bodyText, "Hello, World!");
	});

	t.test("should preserve all header casing and values", async ({ client }) => {
		const data = await (
			await actorOf(client).fetch("test/headers", {
				headers: {
					Accept: "application/json",
					"Accept-Language": "en-US,en;q=0.9",
					"Cache-Control": "no-cache",
					"User-Agent": "RivetKit-Test/1.0",
					"X-Request-ID": "12345",
				},
			})
		).json();
		assert.equal(data.headers.accept, "application/json");
		assert.equal(data.headers["accept-language"], "en-US,en;q=0.9");
		assert.equal(data.headers["cache-control"], "no-cache");
		assert.ok(data.headers["user-agent"]);
		assert.equal(data.headers["x-request-id"], "12345");
	});

	t.test("should handle empty and special URL paths", async ({ client }) => {
		const actor = actorOf(client);
		const root = await actor.fetch("");
		assert.equal(root.ok, true);
		assert.equal((await root.json()).pathname, "/");
		const special = await actor.fetch("test/path%20with%20spaces/and%2Fslashes");
		assert.equal(special.ok, true);
		assert.match((await special.json()).pathname, /path.*with.*spaces.*and.*slashes/);
		const fragment = await actor.fetch("test/path#fragment");
		assert.equal(fragment.ok, true);
		const fragmentData = await fragment.json();
		assert.equal(fragmentData.pathname, "/test/path");
		assert.equal(fragmentData.hash, "");
	});

	t.test("should handle request properties for all HTTP methods", async ({ client }) => {
		const actor = actorOf(client);
		for (const method of ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]) {
			const res = await actor.fetch(`test/${method.toLowerCase()}`, {
				method,
				body: ["POST", "PUT", "PATCH"].includes(method) ? JSON.stringify({ method }) : undefined,
			});
			if (method === "HEAD") {
				assert.equal(res.status, 200);
				assert.equal(await res.text(), "");
			} else if (method === "OPTIONS") {
				assert.equal(res.status, 204);
				assert.equal(await res.text(), "");
			} else {
				assert.equal(res.ok, true, method);
				assert.equal((await res.json()).method, method);
			}
		}
	});

	t.test("should handle complex query parameters", async ({ client }) => {
		const data = await (
			await actorOf(client).fetch("test?key=value1&key=value2&array[]=1&array[]=2&nested[prop]=val")
		).json();
		assert.equal(data.searchParams.key, "value2");
		assert.equal(data.searchParams["array[]"], "2");
		assert.equal(data.searchParams["nested[prop]"], "val");
	});

	t.test("should handle multipart form data", async ({ client }) => {
		const boundary = "----RivetKitBoundary";
		const body = [
			`------${boundary}`,
			'Content-Disposition: form-data; name="field1"',
			"",
			"value1",
			`------${boundary}`,
			'Content-Disposition: form-data; name="field2"',
			"",
			"value2",
			`------${boundary}--`,
		].join("\r\n");
		const res = await actorOf(client).fetch("test/multipart", {
			method: "POST",
			headers: { "Content-Type": `multipart/form-data; boundary=----${boundary}` },
			body,
		});
		assert.equal(res.ok, true);
		const data = await res.json();
		assert.match(data.headers["content-type"], /multipart\/form-data/);
		assert.match(data.bodyText, /field1/);
		assert.match(data.bodyText, /value1/);
	});

	t.test("should handle very long URLs", async ({ client }) => {
		const longValue = "x".repeat(1000);
		const res = await actorOf(client).fetch(`test/long?param=${longValue}`);
		assert.equal(res.ok, true);
		const data = await res.json();
		assert.equal(data.searchParams.param, longValue);
		assert.ok(data.search.length > 1000);
	});

	t.test("should handle large request bodies", async ({ client }) => {
		const large = new Array(10000).fill({
			id: 1,
			name: "Test",
			description: "This is a test object with some data",
		});
		const res = await actorOf(client).fetch("test/large", {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify(large),
		});
		assert.equal(res.ok, true);
		assert.equal((await res.json()).body.length, 10000);
	});

	t.test("should handle missing content-type header", async ({ client }) => {
		const res = await actorOf(client).fetch("test/no-content-type", {
			method: "POST",
			body: "plain text without content-type",
		});
		assert.equal(res.ok, true);
		assert.equal((await res.json()).bodyText, "plain text without content-type");
	});

	t.test("should handle empty request body", async ({ client }) => {
		const res = await actorOf(client).fetch("test/empty", {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: "",
		});
		assert.equal(res.ok, true);
		await res.arrayBuffer();
	});

	t.test("should handle custom HTTP methods", async ({ client }) => {
		let res;
		try {
			res = await actorOf(client).fetch("test/custom", { method: "CUSTOM" });
		} catch {
			return; // Some fetch implementations refuse custom methods.
		}
		if (res.ok) assert.equal((await res.json()).method, "CUSTOM");
		else await res.arrayBuffer();
	});

	t.test("should handle cookies in headers", async ({ client }) => {
		const data = await (
			await actorOf(client).fetch("test/cookies", {
				headers: { Cookie: "session=abc123; user=test; preferences=dark_mode" },
			})
		).json();
		assert.equal(data.headers.cookie, "session=abc123; user=test; preferences=dark_mode");
	});

	t.test("should handle URL encoding properly", async ({ client }) => {
		const data = await (
			await actorOf(client).fetch(
				"test/encoded?special=%20%21%40%23%24%25%5E%26&unicode=%E2%9C%93&email=test%40example.com",
			)
		).json();
		assert.equal(data.searchParams.special, " !@#$%^&");
		assert.equal(data.searchParams.unicode, "✓");
		assert.equal(data.searchParams.email, "test@example.com");
	});

	t.test("should handle concurrent requests maintaining separate contexts", async ({ client }) => {
		const actor = actorOf(client);
		const responses = await Promise.all([
			actor.fetch("test/concurrent?id=1", {
				method: "POST",
				headers: { "Content-Type": "application/json" },
				body: JSON.stringify({ request: 1 }),
			}),
			actor.fetch("test/concurrent?id=2", {
				method: "PUT",
				headers: { "Content-Type": "application/json" },
				body: JSON.stringify({ request: 2 }),
			}),
			actor.fetch("test/concurrent?id=3", { method: "DELETE" }),
		]);
		const results = await Promise.all(responses.map((r) => r.json()));
		assert.equal(results[0].searchParams.id, "1");
		assert.equal(results[0].method, "POST");
		assert.deepEqual(results[0].body, { request: 1 });
		assert.equal(results[1].searchParams.id, "2");
		assert.equal(results[1].method, "PUT");
		assert.deepEqual(results[1].body, { request: 2 });
		assert.equal(results[2].searchParams.id, "3");
		assert.equal(results[2].method, "DELETE");
		assert.equal(results[2].body, null);
	});
});
