// Port of rivetkit tests/driver/actor-conn-state.test.ts.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { matrix, rejectsWith, waitFor } from "./harness.mjs";

matrix("Actor Conn State", (t) => {
	t.describe("Connection State Initialization", () => {
		t.test("should retrieve connection state", async ({ client }) => {
			const connection = client.connStateActor.getOrCreate().connect();
			const connState = await connection.getConnectionState();
			for (const k of ["id", "username", "role", "counter", "createdAt"]) {
				assert.notEqual(connState[k], undefined, k);
			}
			await connection.dispose();
		});

		t.test("should initialize connection state with custom parameters", async ({ client }) => {
			const connection = client.connStateActor
				.getOrCreate([], { params: { username: "testuser", role: "admin" } })
				.connect();
			const connState = await connection.getConnectionState();
			assert.equal(connState.username, "testuser");
			assert.equal(connState.role, "admin");
			await connection.dispose();
		});
	});

	t.describe("Connection State Management", () => {
		t.test("should maintain unique state for each connection", async ({ client }) => {
			const conn1 = client.connStateActor
				.getOrCreate([], { params: { username: "user1" } })
				.connect();
			await conn1.getConnectionState();
			const conn2 = client.connStateActor
				.getOrCreate([], { params: { username: "user2" } })
				.connect();
			await conn2.getConnectionState();
			await conn1.incrementConnCounter(5);
			await conn2.incrementConnCounter(10);
			const state1 = await conn1.getConnectionState();
			const state2 = await conn2.getConnectionState();
			assert.equal(state1.counter, 5);
			assert.equal(state2.counter, 10);
			assert.equal(state1.username, "user1");
			assert.equal(state2.username, "user2");
			await conn1.dispose();
			await conn2.dispose();
		});

		t.test("should track connections in shared state", async ({ client }) => {
			const handle = client.connStateActor.getOrCreate();
			const conn1 = handle.connect();
			await conn1.getConnectionState();
			const conn2 = handle.connect();
			await conn2.getConnectionState();
			const state1 = await conn1.getConnectionState();
			const connectionIds = await conn1.getConnectionIds();
			assert.ok(connectionIds.length >= 2);
			assert.ok(connectionIds.includes(state1.id));
			await conn1.dispose();
			await conn2.dispose();
		});

		t.test("should identify different connections in the same actor", async ({ client }) => {
			const handle = client.connStateActor.getOrCreate();
			const conn1 = handle.connect();
			await conn1.getConnectionState();
			const conn2 = handle.connect();
			await conn2.getConnectionState();
			const allStates = await conn1.getAllConnectionStates();
			assert.ok(allStates.length >= 2);
			const ids = allStates.map((s) => s.id);
			assert.equal(new Set(ids).size, ids.length);
			await conn1.dispose();
			await conn2.dispose();
		});
	});

	t.describe("Connection Lifecycle", () => {
		t.test(
			"should hide connections from c.conns until createConnState completes",
			async ({ client }) => {
				const handle = client.connPreflightVisibilityActor.getOrCreate([
					"create-state-visibility",
					randomUUID(),
				]);
				const primary = handle.connect({ label: "primary" });
				await primary.snapshot();
				const pending = handle.connect({ label: "pending", createDelayMs: 300 });
				const snap = await pending.snapshot();
				assert.deepEqual([...snap.visibleLabels].sort(), ["pending", "primary"]);
				assert.deepEqual(snap.createVisibleLabels, [[], ["primary"]]);
				const mine = snap.connectSnapshots.find((s) => s.label === "pending");
				assert.equal(mine.ownVisible, true);
				assert.deepEqual([...mine.visibleLabels].sort(), ["pending", "primary"]);
				await pending.dispose();
				await primary.dispose();
			},
		);

		t.test(
			"should hide connections from c.conns until onBeforeConnect completes",
			async ({ client }) => {
				const handle = client.connPreflightVisibilityActor.getOrCreate([
					"before-connect-visibility",
					randomUUID(),
				]);
				const primary = handle.connect({ label: "primary" });
				await primary.snapshot();
				const pending = handle.connect({ label: "pending", beforeDelayMs: 300 });
				const snap = await pending.snapshot();
				assert.deepEqual([...snap.visibleLabels].sort(), ["pending", "primary"]);
				assert.deepEqual(snap.beforeVisibleLabels, [[], ["primary"]]);
				assert.deepEqual(snap.createVisibleLabels, [[], ["primary"]]);
				const mine = snap.connectSnapshots.find((s) => s.label === "pending");
				assert.equal(mine.ownVisible, true);
				assert.deepEqual([...mine.visibleLabels].sort(), ["pending", "primary"]);
				await pending.dispose();
				await primary.dispose();
			},
		);

		t.test(
			"should deliver onConnect events to listeners registered before the first await",
			async ({ client }) => {
				const conn = client.connStateActor
					.getOrCreate([], { params: { username: "connect-event-user" } })
					.connect();
				let connectEvent;
				let connectConnsEvent;
				const unsubscribe = conn.on("connectedFromOnConnect", (event) => {
					connectEvent = event;
					unsubscribe();
				});
				const unsubscribeConns = conn.on("connectedFromOnConnectConns", (event) => {
					connectConnsEvent = event;
					unsubscribeConns();
				});
				const connState = await conn.getConnectionState();
				await waitFor(
					() => {
						assert.deepEqual(connectEvent, { id: connState.id, username: "connect-event-user" });
						assert.deepEqual(connectConnsEvent, {
							id: connState.id,
							username: "connect-event-user",
						});
					},
					{ timeout: 10_000, interval: 100 },
				);
				await conn.dispose();
			},
		);

		t.test("should track connection and disconnection events", async ({ client }) => {
			const debugHandle = client.connStateActor.getOrCreate(undefined, {
				params: { noCount: true },
			});
			const conn = client.connStateActor.getOrCreate().connect();
			const connState = await conn.getConnectionState();
			await waitFor(async () =>
				assert.ok((await debugHandle.getConnectionIds()).includes(connState.id)),
			);
			await waitFor(async () => assert.equal(await debugHandle.getDisconnectionCount(), 0));
			await conn.dispose();
			await waitFor(async () => assert.equal(await debugHandle.getDisconnectionCount(), 1), {
				timeout: 10_000,
				interval: 100,
			});
			const newConn = client.connStateActor.getOrCreate().connect();
			await waitFor(async () => assert.equal((await debugHandle.getConnectionIds()).length, 1));
			await newConn.dispose();
			await waitFor(async () => assert.equal(await debugHandle.getDisconnectionCount(), 2), {
				timeout: 10_000,
				interval: 100,
			});
		});

		t.test("should update connection state", async ({ client }) => {
			const conn = client.connStateActor.getOrCreate().connect();
			assert.equal((await conn.getConnectionState()).username, "anonymous");
			const updated = await conn.updateConnection({ username: "newname", role: "moderator" });
			assert.equal(updated.username, "newname");
			assert.equal(updated.role, "moderator");
			const latest = await conn.getConnectionState();
			assert.equal(latest.username, "newname");
			assert.equal(latest.role, "moderator");
			await conn.dispose();
		});

		t.test("disconnectSelf closes the connection from the server", async ({ client }) => {
			const debugHandle = client.connStateActor.getOrCreate(undefined, {
				params: { noCount: true },
			});
			const conn = client.connStateActor.getOrCreate().connect();
			const { id } = await conn.getConnectionState();
			// The action's response races with the close it asks for: the
			// call either returns true or fails with the close reason.
			try {
				assert.equal(await conn.disconnectSelf(), true);
			} catch (err) {
				assert.match(String(err?.message), /test\.disconnect/);
			}
			// The server drops the connection (the client may reconnect
			// with a new connection id); onDisconnect ran for the old one.
			await waitFor(async () => assert.equal(await debugHandle.getDisconnectionCount(), 1), {
				timeout: 10_000,
				interval: 100,
			});
			await waitFor(async () => assert.ok(!(await debugHandle.getConnectionIds()).includes(id)));
			await conn.dispose();
		});
	});

	t.describe("Connection Preflight Disconnect (conn-preflight-disconnect.test.ts)", () => {
		t.test("should not call onDisconnect when preflight fails", async ({ client }) => {
			const handle = client.connPreflightVisibilityActor.getOrCreate([
				"failed-preflight-disconnect",
				randomUUID(),
			]);
			const primary = handle.connect({ label: "primary" });
			await primary.snapshot();
			const rejectedBefore = handle.connect({ label: "rejected-before", rejectBefore: true });
			await rejectsWith(rejectedBefore.snapshot());
			const rejectedCreate = handle.connect({ label: "rejected-create", rejectCreate: true });
			await rejectsWith(rejectedCreate.snapshot());
			const snapshot = await primary.snapshot();
			assert.deepEqual(snapshot.disconnectSnapshots, []);
			assert.deepEqual(snapshot.visibleLabels, ["primary"]);
			await rejectedBefore.dispose();
			await rejectedCreate.dispose();
			await primary.dispose();
		});
	});

	t.describe("Connection Communication", () => {
		t.test("should send messages to specific connections", async ({ client }) => {
			const handle = client.connStateActor.getOrCreate();
			const conn1 = handle.connect();
			const state1 = await conn1.getConnectionState();
			const conn2 = handle.connect();
			const state2 = await conn2.getConnectionState();
			const received = [];
			conn2.on("directMessage", (data) => received.push(data));
			await conn2.getConnectionState();
			assert.equal(await conn1.sendToConnection(state2.id, "Hello from conn1"), true);
			await waitFor(() => {
				assert.equal(received.length, 1);
				assert.equal(received[0].from, state1.id);
				assert.equal(received[0].message, "Hello from conn1");
			});
			await conn1.dispose();
			await conn2.dispose();
		});
	});

	t.describe("Counter Conn (per-connection state)", () => {
		t.test("keeps the count per connection and counts connections", async ({ client }) => {
			const handle = client.counterConn.getOrCreate([`counter-conn-${randomUUID()}`]);
			const a = handle.connect();
			const b = handle.connect();
			await a.increment(3);
			await b.increment(5);
			assert.equal(await a.getCount(), 3);
			assert.equal(await b.getCount(), 5);
			assert.equal(await a.getConnectionCount(), 2);
			await b.dispose();
			await waitFor(async () => assert.equal(await a.getConnectionCount(), 1));
			await a.dispose();
		});
	});
});
