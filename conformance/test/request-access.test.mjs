// Port of rivetkit tests/driver/request-access.test.ts, including its
// commented-out onRequest/onWebSocket checks (through handle.fetch and
// handle.webSocket instead of the removed /registry routes).
import assert from "node:assert/strict";
import { matrix, messageQueue, openRawWebSocket } from "./harness.mjs";


matrix("Request Access", (t) => {
	t.describe("Request Access in Lifecycle Hooks", () => {
		t.test(
			"should have access to request object in onBeforeConnect and createConnState",
			{},
			async ({ client }) => {
				const conn = client.requestAccessActor
					.getOrCreate(["test-request"], { params: { trackRequest: true } })
					.connect();
				const info = await conn.getRequestInfo();
				for (const hook of ["onBeforeConnect", "createConnState"]) {
					assert.equal(info[hook].hasRequest, true, hook);
					assert.ok(info[hook].requestUrl, hook);
					assert.ok(info[hook].requestMethod, hook);
					assert.equal(typeof info[hook].requestHeaders, "object", hook);
				}
				await conn.dispose();
			},
		);

		t.test("should not have request when trackRequest is false", async ({ client }) => {
			const conn = client.requestAccessActor
				.getOrCreate(["test-no-request"], { params: { trackRequest: false } })
				.connect();
			const info = await conn.getRequestInfo();
			for (const hook of ["onBeforeConnect", "createConnState"]) {
				assert.equal(info[hook].hasRequest, false);
				assert.equal(info[hook].requestUrl, null);
				assert.equal(info[hook].requestMethod, null);
				assert.equal(Object.keys(info[hook].requestHeaders).length, 0);
			}
			await conn.dispose();
		});

		t.test(
			"should run onBeforeConnect for stateless action calls",
			{},
			async ({ client }) => {
				const viewHandle = client.requestAccessActor.getOrCreate(["test-action-request"]);
				const trackingHandle = client.requestAccessActor.getOrCreate(["test-action-request"], {
					params: { trackRequest: true },
				});
				assert.equal(await trackingHandle.ping(), "pong");
				const info = await viewHandle.getRequestInfo();
				assert.equal(info.onBeforeConnect.hasRequest, true);
				assert.ok(info.onBeforeConnect.requestMethod);
				assert.ok(info.onBeforeConnect.requestUrl);
			},
		);

		t.test("should have access to request object in onRequest", async ({ client }) => {
			const res = await client.requestAccessActor.getOrCreate(["test-fetch"]).fetch("test-path", {
				method: "POST",
				headers: { "Content-Type": "application/json", "X-Test-Header": "test-value" },
				body: JSON.stringify({ test: "data" }),
			});
			assert.equal(res.ok, true);
			const data = await res.json();
			assert.equal(data.hasRequest, true);
			assert.match(data.requestUrl, /\/test-path/);
			assert.equal(data.requestMethod, "POST");
			assert.equal(data.requestHeaders["content-type"], "application/json");
			assert.equal(data.requestHeaders["x-test-header"], "test-value");
		});

		t.test("should have access to request object in onWebSocket", async (ctx) => {
			const handle = ctx.client.requestAccessActor.getOrCreate(["test-websocket"]);
			const ws = await openRawWebSocket(ctx, handle, "test-path");
			const data = await messageQueue(ws).json();
			assert.equal(data.hasRequest, true);
			assert.match(data.requestUrl, /\/test-path/);
			assert.equal(data.requestMethod, "GET");
			assert.equal(typeof data.requestHeaders, "object");
			const info = await handle.getRequestInfo();
			assert.equal(info.onWebSocket.hasRequest, true);
			ws.close();
		});
	});
});
