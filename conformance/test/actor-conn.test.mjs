// Port of rivetkit tests/driver/actor-conn.test.ts.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { collectEvents, matrix, rejectsWith, sleep, waitFor } from "./harness.mjs";

function items(n) {
	return Array.from(
		{ length: n },
		(_, i) => `Item ${i} with some additional text to increase size`,
	);
}

matrix("Actor Conn", (t) => {
	t.describe("Connection Methods", () => {
		t.test("should connect using .get().connect()", async ({ client }) => {
			await client.counter.create(["test-get"]);
			const connection = client.counter.get(["test-get"]).connect();
			assert.equal(await connection.increment(5), 5);
			await connection.dispose();
		});

		t.test("should connect using .getForId().connect()", async ({ client }) => {
			const handle = client.counter.getOrCreate(["test-get-for-id"]);
			await handle.increment(3);
			const actorId = await handle.resolve();
			const connection = client.counter.getForId(actorId).connect();
			assert.equal(await connection.getCount(), 3);
			await connection.dispose();
		});

		t.test("should connect using .getOrCreate().connect()", async ({ client }) => {
			const connection = client.counter.getOrCreate(["test-get-or-create"]).connect();
			assert.equal(await connection.increment(7), 7);
			await connection.dispose();
		});

		t.test("should expose actorId after connection init", async ({ client }) => {
			const handle = client.counter.getOrCreate(["test-conn-actor-id"]);
			const connection = handle.connect();
			await connection.ready;
			assert.equal(connection.actorId, await handle.resolve());
			await connection.dispose();
		});

		t.test("should connect using (await create()).connect()", async ({ client }) => {
			const handle = await client.counter.create(["test-create"]);
			const connection = handle.connect();
			assert.equal(await connection.increment(9), 9);
			await connection.dispose();
		});
	});

	t.describe("Event Communication", () => {
		t.test("should mix RPC calls and WebSocket events", async ({ client }) => {
			const handle = client.counter.getOrCreate(["test-mixed-rpc-ws"]);
			const connection = handle.connect();
			const receivedEvents = [];
			connection.on("newCount", (count) => receivedEvents.push(count));

			const bootstrap = collectEvents(connection, "newCount", 1);
			await connection.setCount(1);
			assert.deepEqual(await bootstrap, [1]);

			// Stateless calls through the handle reach the connection too.
			const forwarded = collectEvents(connection, "newCount", 2);
			await handle.setCount(2);
			await handle.setCount(3);
			assert.deepEqual(await forwarded, [2, 3]);
			assert.deepEqual(receivedEvents, [1, 2, 3]);
			await connection.dispose();
		});

		t.test("should receive events via broadcast", async ({ client }) => {
			const connection = client.counter.getOrCreate(["test-broadcast"]).connect();
			const receivedEvents = [];
			connection.on("newCount", (count) => receivedEvents.push(count));
			const events = collectEvents(connection, "newCount", 2);
			await connection.setCount(5);
			await connection.setCount(8);
			assert.deepEqual(await events, [5, 8]);
			assert.deepEqual(receivedEvents, [5, 8]);
			await connection.dispose();
		});

		t.test("broadcasts reach every subscribed connection", async ({ client }) => {
			const handle = client.counter.getOrCreate(["test-broadcast-many"]);
			const a = handle.connect();
			const b = handle.connect();
			const gotA = collectEvents(a, "newCount", 1);
			const gotB = collectEvents(b, "newCount", 1);
			await a.ready;
			await b.ready;
			// An action on either connection runs once Init is in, after the
			// subscriptions were flushed.
			await b.getCount();
			await a.setCount(42);
			assert.deepEqual(await gotA, [42]);
			assert.deepEqual(await gotB, [42]);
			await a.dispose();
			await b.dispose();
		});

		t.test("should handle one-time events with once()", async ({ client }) => {
			const connection = client.counter.getOrCreate(["test-once"]).connect();
			const receivedEvents = [];
			const first = new Promise((resolve) => {
				connection.once("newCount", (count) => {
					receivedEvents.push(count);
					resolve(count);
				});
			});
			await connection.increment(5);
			await connection.increment(3);
			assert.equal(await first, 5);
			assert.deepEqual(receivedEvents, [5]);
			await connection.dispose();
		});

		t.test("should unsubscribe from events", async ({ client }) => {
			const connection = client.counter.getOrCreate(["test-unsubscribe"]).connect();
			const receivedEvents = [];
			let resolveFirst;
			const first = new Promise((resolve) => {
				resolveFirst = resolve;
			});
			const unsubscribe = connection.on("newCount", (count) => {
				receivedEvents.push(count);
				resolveFirst?.(count);
				resolveFirst = undefined;
			});
			await connection.setCount(5);
			assert.equal(await first, 5);
			unsubscribe();
			await connection.setCount(8);
			// A marker event on a second connection proves that events
			// broadcast after setCount(8) were already delivered.
			const marker = client.counter.getOrCreate(["test-unsubscribe"]).connect();
			const markerEvent = collectEvents(marker, "newCount", 1);
			await marker.getCount();
			await marker.setCount(9);
			assert.deepEqual(await markerEvent, [9]);
			await connection.getCount();
			assert.deepEqual(receivedEvents, [5]);
			await marker.dispose();
			await connection.dispose();
		});
	});

	t.describe("Connection Parameters", () => {
		t.test("should pass connection parameters", async ({ client }) => {
			const conn1 = client.counterWithParams
				.getOrCreate(["test-params"], { params: { name: "user1" } })
				.connect();
			await conn1.getInitializers();
			const conn2 = client.counterWithParams
				.getOrCreate(["test-params"], { params: { name: "user2" } })
				.connect();
			await conn2.getInitializers();
			const initializers = await conn1.getInitializers();
			assert.ok(initializers.includes("user1"));
			assert.ok(initializers.includes("user2"));
			await conn1.dispose();
			await conn2.dispose();
		});

		t.test("conn params reach events through connection state", async ({ client }) => {
			const conn = client.counterWithParams
				.getOrCreate(["test-params-event"], { params: { name: "alice" } })
				.connect();
			const event = collectEvents(conn, "newCount", 1);
			assert.equal(await conn.increment(2), 2);
			assert.deepEqual(await event, [{ count: 2, by: "alice" }]);
			await conn.dispose();
		});

		t.test("should call getParams for each connection", async ({ client }) => {
			let connectionCount = 0;
			const handle = client.counterWithParams.getOrCreate(["test-get-params"], {
				getParams: async () => ({ name: `user${++connectionCount}` }),
			});
			const conn1 = handle.connect();
			await conn1.getInitializers();
			await conn1.dispose();
			const conn2 = handle.connect();
			assert.deepEqual(await conn2.getInitializers(), ["user1", "user2"]);
			assert.equal(connectionCount, 2);
			await conn2.dispose();
		});

		t.test("should surface getParams errors and retry connection setup", async ({ client }) => {
			let attempts = 0;
			const handle = client.counterWithParams.getOrCreate(["test-get-params-retry"], {
				getParams: async () => {
					attempts++;
					if (attempts === 1) throw new Error("token unavailable");
					return { name: "user1" };
				},
			});
			const conn = handle.connect();
			const receivedErrors = [];
			conn.onError((error) => receivedErrors.push({ group: error.group, code: error.code }));
			const err = await rejectsWith(conn.getInitializers());
			assert.deepEqual(
				{ group: err.group, code: err.code },
				{ group: "client", code: "get_params_failed" },
			);
			await waitFor(async () => assert.deepEqual(await conn.getInitializers(), ["user1"]), {
				timeout: 30_000,
			});
			assert.deepEqual(receivedErrors, [{ group: "client", code: "get_params_failed" }]);
			assert.ok(attempts >= 2);
			await conn.dispose();
		});
	});

	t.describe("Lifecycle Hooks", () => {
		t.test("should trigger lifecycle hooks", async ({ client }) => {
			const connection = client.counterWithLifecycle
				.getOrCreate(["test-lifecycle"], { params: { trackLifecycle: true } })
				.connect();
			assert.deepEqual(await connection.getEvents(), ["onWake", "onBeforeConnect", "onConnect"]);
			await connection.dispose();
			await waitFor(
				async () => {
					const finalEvents = await client.counterWithLifecycle
						.getOrCreate(["test-lifecycle"])
						.getEvents();
					const ok = [
						["onWake", "onBeforeConnect", "onConnect", "onDisconnect"],
						["onWake", "onBeforeConnect", "onConnect", "onDisconnect", "onWake"],
					].some((want) => JSON.stringify(want) === JSON.stringify(finalEvents));
					assert.ok(ok, `events ${JSON.stringify(finalEvents)}`);
				},
				{ timeout: 10_000, interval: 100 },
			);
		});
	});

	t.describe("Connection State", () => {
		t.test("isConnected should be false before connection opens", async ({ client }) => {
			const connection = client.counter.getOrCreate(["test-isconnected-initial"]).connect();
			assert.equal(connection.isConnected, false);
			await waitFor(() => assert.equal(connection.isConnected, true), {
				timeout: 10_000,
				interval: 25,
			});
			await connection.dispose();
		});

		t.test("ready resolves when connection first opens", async ({ client }) => {
			const connection = client.counter.getOrCreate(["test-ready"]).connect();
			const ready = connection.ready;
			let resolved = false;
			ready.then(() => {
				resolved = true;
			});
			assert.equal(connection.ready, ready);
			assert.equal(connection.isConnected, false);
			await Promise.resolve();
			assert.equal(resolved, false);
			await ready;
			assert.equal(resolved, true);
			assert.equal(connection.isConnected, true);
			assert.equal(connection.ready, ready);
			await connection.dispose();
		});

		t.test("onOpen should be called when connection opens", async ({ client }) => {
			const connection = client.counter.getOrCreate(["test-onopen"]).connect();
			let openCount = 0;
			connection.onOpen(() => {
				openCount++;
			});
			await waitFor(() => assert.equal(openCount, 1), { timeout: 10_000, interval: 25 });
			assert.equal(connection.isConnected, true);
			await connection.dispose();
		});

		t.test("onClose should be called when connection closes via dispose", async ({ client }) => {
			const connection = client.counter.getOrCreate(["test-onclose"]).connect();
			let closeCount = 0;
			connection.onClose(() => {
				closeCount++;
			});
			await waitFor(() => assert.equal(connection.isConnected, true), {
				timeout: 10_000,
				interval: 25,
			});
			await connection.dispose();
			assert.equal(closeCount, 1);
			assert.equal(connection.isConnected, false);
		});

		t.test("should be able to unsubscribe from onOpen", async ({ client }) => {
			const connection = client.counter.getOrCreate(["test-onopen-unsub"]).connect();
			let openCount = 0;
			const unsubscribe = connection.onOpen(() => {
				openCount++;
			});
			unsubscribe();
			await waitFor(() => assert.equal(connection.isConnected, true), {
				timeout: 10_000,
				interval: 25,
			});
			assert.equal(openCount, 0);
			await connection.dispose();
		});

		t.test("should be able to unsubscribe from onClose", async ({ client }) => {
			const connection = client.counter.getOrCreate(["test-onclose-unsub"]).connect();
			let closeCount = 0;
			const unsubscribe = connection.onClose(() => {
				closeCount++;
			});
			await waitFor(() => assert.equal(connection.isConnected, true), {
				timeout: 10_000,
				interval: 25,
			});
			unsubscribe();
			await connection.dispose();
			assert.equal(closeCount, 0);
		});

		t.test("multiple onOpen handlers should all be called", async ({ client }) => {
			const connection = client.counter.getOrCreate(["test-multi-onopen"]).connect();
			let h1 = false;
			let h2 = false;
			connection.onOpen(() => {
				h1 = true;
			});
			connection.onOpen(() => {
				h2 = true;
			});
			await waitFor(() => assert.ok(h1 && h2), { timeout: 10_000, interval: 25 });
			await connection.dispose();
		});

		t.test("multiple onClose handlers should all be called", async ({ client }) => {
			const connection = client.counter.getOrCreate(["test-multi-onclose"]).connect();
			let h1 = false;
			let h2 = false;
			connection.onClose(() => {
				h1 = true;
			});
			connection.onClose(() => {
				h2 = true;
			});
			await waitFor(() => assert.equal(connection.isConnected, true), {
				timeout: 10_000,
				interval: 25,
			});
			await connection.dispose();
			assert.ok(h1);
			assert.ok(h2);
		});

		t.test(
			"concurrent actions on one connection all resolve with their own results",
			async ({ client }) => {
				const connection = client.counter
					.getOrCreate([`test-concurrent-${randomUUID()}`])
					.connect();
				const results = await Promise.all(
					Array.from({ length: 20 }, () => connection.increment(1)),
				);
				assert.deepEqual(
					[...results].sort((a, b) => a - b),
					Array.from({ length: 20 }, (_, i) => i + 1),
				);
				await connection.dispose();
			},
		);
	});

	t.describe("Connection Status (actor-conn-status.test.ts)", () => {
		t.test("connStatus starts as idle before connect", async ({ client }) => {
			const conn = client.counter.getOrCreate(["status-idle"]).connect();
			await conn.increment(1);
			assert.equal(conn.connStatus, "connected");
			await conn.dispose();
		});

		t.test("onStatusChange fires on connect and dispose", async ({ client }) => {
			const conn = client.counter.getOrCreate(["status-change"]).connect();
			const statuses = [];
			conn.onStatusChange((status) => statuses.push(status));
			await conn.increment(1);
			await conn.dispose();
			assert.ok(statuses.includes("connected"), JSON.stringify(statuses));
		});

		t.test("onStatusChange unsubscribe stops callbacks", async ({ client }) => {
			const conn = client.counter.getOrCreate(["status-unsub"]).connect();
			const statuses = [];
			const unsub = conn.onStatusChange((status) => statuses.push(status));
			await conn.increment(1);
			unsub();
			const n = statuses.length;
			await conn.dispose();
			assert.equal(statuses.length, n);
		});

		t.test("onClose fires when connection is disposed", async ({ client }) => {
			const conn = client.counter.getOrCreate(["status-onclose"]).connect();
			await conn.increment(1);
			let closed = 0;
			conn.onClose(() => closed++);
			await conn.dispose();
			assert.equal(closed, 1);
		});
	});

	t.describe("Large Payloads", () => {
		t.test("should handle large request within size limit", async ({ client }) => {
			const connection = client.largePayloadConnActor.getOrCreate(["test-large-request"]).connect();
			const result = await connection.processLargeRequest({ items: items(800) });
			assert.equal(result.itemCount, 800);
			assert.equal(result.firstItem, "Item 0 with some additional text to increase size");
			assert.equal(result.lastItem, "Item 799 with some additional text to increase size");
			assert.equal(await connection.getLastRequestSize(), 800);
			await connection.dispose();
		});

		t.test(
			"should reject request exceeding maxIncomingMessageSize via server",
			async ({ client }) => {
				const connection = client.largePayloadConnActor
					.getOrCreate(["test-large-request-exceed"])
					.connect();
				const [oversized, collateral] = await Promise.allSettled([
					connection.processLargeRequest({ items: items(1500) }),
					connection.processLargeRequest({ items: ["small"] }),
				]);
				assert.equal(oversized.status, "rejected");
				assert.deepEqual(
					{ group: oversized.reason?.group, code: oversized.reason?.code },
					{ group: "message", code: "incoming_too_long" },
					String(oversized.reason),
				);
				assert.equal(collateral.status, "rejected");
				await connection.dispose();
			},
		);

		t.test("should handle large response", async ({ client }) => {
			const connection = client.largePayloadConnActor
				.getOrCreate(["test-large-response"])
				.connect();
			const result = await connection.getLargeResponse(800);
			assert.equal(result.items.length, 800);
			assert.equal(result.items[0], "Item 0 with some additional text to increase size");
			assert.equal(result.items[799], "Item 799 with some additional text to increase size");
			await connection.dispose();
		});

		t.test("should reject response exceeding maxOutgoingMessageSize", async ({ client }) => {
			const connection = client.largePayloadConnActor
				.getOrCreate(["test-large-response-exceed"])
				.connect();
			const err = await rejectsWith(connection.getLargeResponse(20000));
			assert.deepEqual(
				{ group: err.group, code: err.code },
				{ group: "message", code: "outgoing_too_long" },
				String(err),
			);
			// The connection survives an outgoing_too_long error.
			assert.equal((await connection.getLargeResponse(1)).items.length, 1);
			await connection.dispose();
		});
	});
});
