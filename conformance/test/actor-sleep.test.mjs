// Port of rivetkit tests/driver/actor-sleep.test.ts with the sleep
// fixtures' short timeouts (examples/fixtures/sleep.go: SLEEP_TIMEOUT
// 1000 ms, RAW_WS_HANDLER_SLEEP_TIMEOUT 100 ms, RAW_WS_HANDLER_DELAY 250 ms,
// VARS_EXCEEDS_GRACE_DELAY 2000 ms).
//
// Upstream waits fixed times and then asserts. Here positive checks poll
// with a deadline. A call wakes a sleeping actor and resets an awake one's
// sleep timer, so a poll that waits for an idle sleep waits a full sleep
// timeout between its calls (afterIdle). Checks that something did NOT
// happen still need a bounded wait; their margins are at least 250 ms.
//
// Not ported: the log-scraping parts (getRuntimeOutput) of "waitUntil
// accepts promises...", "keepAwake accepts promises...", "waitUntil in
// onSleep keeps c.vars..." and "c.vars access in ws handler..." (their
// state assertions are kept).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import {
	closeRawWebSocket,
	matrix,
	messageQueue,
	openRawWebSocket,
	sleep,
	waitFor,
	withTimeout,
} from "./harness.mjs";

const SLEEP_TIMEOUT = 1000;
const RAW_WS_HANDLER_SLEEP_TIMEOUT = 100;
const RAW_WS_HANDLER_DELAY = 250;
const VARS_EXCEEDS_GRACE_DELAY = 2000;
const VARS_EXCEEDS_GRACE_SLEEP_TIMEOUT = 100;

const key = (prefix) => [`${prefix}-${randomUUID()}`];

/** Polls read() until pred holds (for changes that need no idle time). */
async function until(read, pred, timeout = 10_000) {
	return await waitFor(
		async () => {
			const v = await read();
			assert.ok(pred(v), `state ${JSON.stringify(v)}`);
			return v;
		},
		{ timeout, interval: 100 },
	);
}

/**
 * Waits for an idle sleep: each try first stays idle for a full sleep
 * timeout (plus slack), then reads (which wakes the actor).
 */
async function afterIdle(sleepTimeout, read, pred, attempts = 5) {
	let v;
	for (let i = 0; i < attempts; i++) {
		await sleep(sleepTimeout + 300);
		v = await read();
		if (pred(v)) return v;
	}
	assert.fail(`state after idle: ${JSON.stringify(v)}`);
}

const sleptOnce = (c) => c.sleepCount === 1 && c.startCount === 2;

async function connectRaw(ctx, handle) {
	const ws = await openRawWebSocket(ctx, handle);
	const q = messageQueue(ws);
	assert.equal((await q.json()).type, "connected");
	return { ws, q };
}

async function connectRawWithRetry(ctx, handle, attempts = 5) {
	for (let i = 1; ; i++) {
		try {
			return await connectRaw(ctx, handle);
		} catch (err) {
			if (i >= attempts) throw err;
			await sleep(250);
		}
	}
}

// On the engine target the fixtures with 100 ms sleep timeouts fail on
// timing: every call and socket message takes a guard hop and a tunnel hop
// (60-150 ms on an idle 2-core machine, far more under load), so the actor
// sleeps and restarts between two steps of a test (startCount 2 at the
// first read, 2026-12-03 after the sleep-intent fix) or, asleep, closes its
// socket (1000 "actor stopped").
// Decided (2026-12-03): these stay todo on the engine target. What the
// upstream tests check is inside the actor: an async WebSocket handler (or
// a waitUntil in onSleep) holds the sleep past a 100 ms sleep timeout, for
// the 250 ms the handler runs. That is the runtime's behaviour, the same in
// runner mode (the runtime decides when to sleep; the engine only carries
// the intent), and the embedded target checks it. Through the engine each
// call is two hops (guard, tunnel) and on this machine takes about 100 ms
// or more, so the client cannot look inside a 100-250 ms window: the actor
// sleeps between two steps. Longer fixture timeouts for this target would
// test a different fixture than upstream's.
const ENGINE_SHORT_SLEEP =
	"through the engine a call takes longer than these fixtures' 100 ms sleep timeout: the actor slept and restarted between two steps (startCount 2 at the first read) or closed its socket (1000 actor stopped)";

matrix("Actor Sleep", (t) => {
	t.test("actor sleep persists state", async ({ client }) => {
		const sleepActor = client.sleep.getOrCreate(key("persist"));
		assert.deepEqual(await sleepActor.getCounts(), { startCount: 1, sleepCount: 0 });
		await sleepActor.triggerSleep();
		await until(() => sleepActor.getCounts(), sleptOnce);
	});

	t.test("run-closure-self-initiated-sleep persists state", async ({ client }) => {
		const actor = client.runSelfInitiatedSleep.getOrCreate([`run-self-sleep-${randomUUID()}`]);
		await until(
			() => actor.getState(),
			(s) => s.sleepCount === 1 && s.marker === "slept" && s.wakeCount >= 2 && s.runCount >= 2,
			SLEEP_TIMEOUT * 4,
		);
	});

	t.test(
		"actor sleep persists state with connect",
		{},
		async ({ client }) => {
			const k = key("persist-conn");
			const conn = client.sleep.getOrCreate(k).connect();
			assert.deepEqual(await conn.getCounts(), { startCount: 1, sleepCount: 0 });
			await conn.triggerSleep();
			await conn.dispose();
			await until(
				() => client.sleep.getOrCreate(k).getCounts(),
				(c) => c.sleepCount >= 1 && c.startCount === c.sleepCount + 1,
				SLEEP_TIMEOUT * 4,
			);
		},
	);

	t.test(
		"sleep requested through a connection persists state (response not awaited)",
		async ({ client }) => {
			// The todo above without awaiting the triggerSleep action's response.
			const k = key("persist-conn-no-await");
			const conn = client.sleep.getOrCreate(k).connect();
			assert.deepEqual(await conn.getCounts(), { startCount: 1, sleepCount: 0 });
			conn.triggerSleep().catch(() => {});
			await until(
				() => client.sleep.getOrCreate(k).getCounts(),
				(c) => c.sleepCount >= 1 && c.startCount === c.sleepCount + 1,
				SLEEP_TIMEOUT * 4,
			);
			await conn.dispose();
		},
	);

	t.test("actor automatically sleeps after timeout", async ({ client }) => {
		const sleepActor = client.sleep.getOrCreate(key("auto"));
		assert.deepEqual(await sleepActor.getCounts(), { startCount: 1, sleepCount: 0 });
		await afterIdle(SLEEP_TIMEOUT, () => sleepActor.getCounts(), sleptOnce);
	});

	t.test("actor automatically sleeps after timeout with connect", async ({ client }) => {
		const k = key("auto-conn");
		const conn = client.sleep.getOrCreate(k).connect();
		assert.deepEqual(await conn.getCounts(), { startCount: 1, sleepCount: 0 });
		await conn.dispose();
		await afterIdle(SLEEP_TIMEOUT, () => client.sleep.getOrCreate(k).getCounts(), sleptOnce);
	});

	t.test("an open connection does not keep the actor awake", async ({ client }) => {
		// Not upstream (RivetKit 2.3 keeps a connected actor awake): a Go
		// actor sleeps with its connections open, and the connection's
		// next call wakes it (conn-hibernation.test.mjs has the details;
		// KeepAwakeWhileConnected restores RivetKit's behaviour).
		const k = key("conn-awake");
		const conn = client.sleep.getOrCreate(k).connect();
		assert.deepEqual(await conn.getCounts(), { startCount: 1, sleepCount: 0 });
		await afterIdle(SLEEP_TIMEOUT, () => conn.getCounts(), sleptOnce);
		await conn.dispose();
	});

	t.test("waitUntil can broadcast before sleep disconnect", async ({ client }) => {
		const k = key("wait-until-msg");
		const conn = client.sleepWithWaitUntilMessage.getOrCreate(k).connect();
		const received = [];
		conn.once("sleeping", (message) => received.push(message));
		await conn.triggerSleep();
		await waitFor(() => assert.equal(received.length, 1), { timeout: 10_000 });
		assert.equal(received[0].startCount, 1);
		await conn.dispose();
		// Upstream expects exactly one sleep; the client may reconnect after
		// the sleep closed its socket (waking the actor once more), so an
		// extra idle sleep may follow before this read.
		await until(
			() => client.sleepWithWaitUntilMessage.getOrCreate(k).getCounts(),
			(c) =>
				c.waitUntilMessageCount === 1 && c.sleepCount >= 1 && c.startCount === c.sleepCount + 1,
		);
	});

	t.test("waitUntil works in onWake", async ({ client }) => {
		const sleepActor = client.sleepWithWaitUntilInOnWake.getOrCreate(key("wait-until-wake"));
		const status = await sleepActor.getStatus();
		assert.equal(status.startCount, 1);
		assert.equal(status.waitUntilCalled, true);
		await sleepActor.triggerSleep();
		await until(
			() => sleepActor.getStatus(),
			(s) => s.sleepCount === 1 && s.startCount === 2 && s.waitUntilCompleted === true,
		);
	});

	t.test("c.vars survives in abort listener captured by onWake", { engineTodo: "flaky on the engine target at load 30+: the actor slept more often than expected (calls through the engine slower than its 1 s sleep timeout)" }, async (ctx) => {
		const sleepActor = ctx.client.sleepAbortListenerVarsActor.getOrCreate(key("abort-vars"));
		const status0 = await sleepActor.getStatus();
		assert.equal(status0.startCount, 1);
		assert.equal(status0.sleepCount, 0);
		assert.deepEqual(status0.abortVarsSeenPerWake, ["unset"]);
		for (let cycle = 0; cycle < 3; cycle++) {
			const { ws } = await connectRawWithRetry(ctx, sleepActor);
			await sleepActor.triggerSleep();
			await until(
				() => sleepActor.getStatus(),
				(s) => s.sleepCount === cycle + 1,
			);
			try {
				ws.close();
			} catch {}
		}
		const status = await sleepActor.getStatus();
		assert.equal(status.sleepCount, 3);
		assert.ok(status.startCount >= 4);
		for (let i = 0; i < status.abortVarsSeenPerWake.length - 1; i++) {
			assert.deepEqual(
				{ wake: i + 1, observation: status.abortVarsSeenPerWake[i] },
				{ wake: i + 1, observation: "object" },
			);
		}
	});

	t.test("waitUntil accepts promises that resolve to undefined", async ({ client }) => {
		const probe = client.counterWaitUntilProbe.getOrCreate(key("wait-until-probe"));
		assert.equal(await probe.triggerWaitUntilVoid(), 1);
		assert.equal(await probe.getCount(), 1);
		assert.equal(await probe.triggerWaitUntilWithValue(), 2);
		assert.equal(await probe.getCount(), 2);
		assert.equal(await probe.triggerWaitUntilRejectVoid(), 3);
		assert.equal(await probe.getCount(), 3);
	});

	t.test("keepAwake accepts promises that resolve to undefined", async ({ client }) => {
		const probe = client.counterWaitUntilProbe.getOrCreate(key("keep-awake-probe"));
		assert.equal(await probe.triggerKeepAwakeVoid(), 1);
		assert.equal(await probe.triggerKeepAwakeWithValue(), 2);
		assert.equal(await probe.getCount(), 2);
	});

	t.test("rpc calls keep actor awake", async ({ client }) => {
		const k = key("rpc-awake");
		const sleepActor = client.sleep.getOrCreate(k);
		assert.deepEqual(await sleepActor.getCounts(), { startCount: 1, sleepCount: 0 });
		// Two idle gaps shorter than the timeout, longer than it together.
		await sleep(SLEEP_TIMEOUT - 400);
		assert.deepEqual(await sleepActor.getCounts(), { startCount: 1, sleepCount: 0 });
		await sleep(SLEEP_TIMEOUT - 400);
		assert.deepEqual(await sleepActor.getCounts(), { startCount: 1, sleepCount: 0 });
		await afterIdle(SLEEP_TIMEOUT, () => client.sleep.getOrCreate(k).getCounts(), sleptOnce);
	});

	t.test("alarms keep actor awake", async ({ client }) => {
		const sleepActor = client.sleep.getOrCreate(key("alarm-awake"));
		assert.deepEqual(await sleepActor.getCounts(), { startCount: 1, sleepCount: 0 });
		await sleepActor.setAlarm(SLEEP_TIMEOUT - 250);
		await sleep(SLEEP_TIMEOUT + 250);
		assert.deepEqual(await sleepActor.getCounts(), { startCount: 1, sleepCount: 0 });
	});

	t.test("alarms wake actors", async ({ client }) => {
		const sleepActor = client.sleep.getOrCreate(key("alarm-wake"));
		assert.deepEqual(await sleepActor.getCounts(), { startCount: 1, sleepCount: 0 });
		await sleepActor.setAlarm(SLEEP_TIMEOUT + 250);
		await afterIdle(
			SLEEP_TIMEOUT,
			() => sleepActor.getCounts(),
			(c) => c.sleepCount >= 1 && c.startCount === c.sleepCount + 1,
		);
	});

	t.test(
		"a due alarm wakes a sleeping actor by itself",
		async ({ client, endpoint, namespace }) => {
			// Stronger than upstream's "alarms wake actors": put the actor to
			// sleep, make no call until well after the alarm is due, then check
			// the alarm ran at its time (not when a later call woke the actor).
			const scheduled = client.scheduled.getOrCreate(key("alarm-wakes"));
			const id = await scheduled.resolve();
			const before = Date.now();
			await scheduled.scheduleTaskAfter(400);
			const res = await fetch(
				`${endpoint}/actors/${encodeURIComponent(id)}/sleep?namespace=${encodeURIComponent(namespace)}`,
				{ method: "POST", headers: { "content-type": "application/json" }, body: "{}" },
			);
			assert.ok(res.ok, `POST /actors/{id}/sleep: ${res.status}`);
			await sleep(1500);
			const wokeAt = Date.now();
			assert.equal(await scheduled.getScheduledCount(), 1);
			const lastRun = await scheduled.getLastRun();
			assert.ok(lastRun >= before + 350, `ran too early: ${lastRun - before} ms`);
			assert.ok(
				lastRun < wokeAt - 300,
				`ran only when called: ${wokeAt - lastRun} ms before the call`,
			);
		},
	);

	t.test(
		"long running rpcs keep actor awake",
		{
			todo:
				"Go actions hold their actor for the whole turn (fixture doc): finishLongRunningRpc cannot run " +
				"while longRunningRpc is pending, so it never returns (here: times out after 3 s)",
		},
		async ({ client }) => {
			const k = key("long-rpc");
			const conn = client.sleepWithLongRpc.getOrCreate(k).connect();
			assert.deepEqual(await conn.getCounts(), { startCount: 1, sleepCount: 0 });
			const waiting = new Promise((resolve) => conn.once("waiting", resolve));
			const longRunning = conn.longRunningRpc();
			longRunning.catch(() => {});
			await withTimeout(waiting, 10_000, "waiting event");
			await sleep(SLEEP_TIMEOUT + 250);
			await withTimeout(conn.finishLongRunningRpc(), 3000, "finishLongRunningRpc");
			await withTimeout(longRunning, 3000, "longRunningRpc");
			assert.deepEqual(await conn.getCounts(), { startCount: 1, sleepCount: 0 });
			await conn.dispose();
			await afterIdle(
				SLEEP_TIMEOUT,
				() => client.sleepWithLongRpc.getOrCreate(k).getCounts(),
				sleptOnce,
			);
		},
	);

	t.test("active raw websockets keep actor awake", async (ctx) => {
		const sleepActor = ctx.client.sleepWithRawWebSocket.getOrCreate(key("raw-ws-awake"));
		assert.deepEqual(await sleepActor.getCounts(), {
			startCount: 1,
			sleepCount: 0,
			connectionCount: 0,
		});
		const { ws, q } = await connectRaw(ctx, sleepActor);
		await sleep(SLEEP_TIMEOUT + 250);
		ws.send(JSON.stringify({ type: "getCounts" }));
		const counts = await q.ofType("counts");
		assert.equal(counts.sleepCount, 0);
		assert.equal(counts.startCount, 1);
		await closeRawWebSocket(ws);
		await afterIdle(SLEEP_TIMEOUT, () => sleepActor.getCounts(), sleptOnce);
	});

	t.test("active raw fetch requests keep actor awake", async ({ client }) => {
		const sleepActor = client.sleepWithRawHttp.getOrCreate(key("raw-http-awake"));
		assert.deepEqual(await sleepActor.getCounts(), {
			startCount: 1,
			sleepCount: 0,
			requestCount: 0,
		});
		const response = await sleepActor.fetch(`long-request?duration=${SLEEP_TIMEOUT + 250}`);
		assert.deepEqual(await response.json(), { completed: true });
		assert.deepEqual(await sleepActor.getCounts(), {
			startCount: 1,
			sleepCount: 0,
			requestCount: 1,
		});
		await afterIdle(SLEEP_TIMEOUT, () => sleepActor.getCounts(), sleptOnce);
	});

	t.test("noSleep option disables sleeping", async ({ client }) => {
		const sleepActor = client.sleepWithNoSleepOption.getOrCreate(key("no-sleep"));
		assert.deepEqual(await sleepActor.getCounts(), { startCount: 1, sleepCount: 0 });
		await sleep(SLEEP_TIMEOUT + 250);
		assert.deepEqual(await sleepActor.getCounts(), { startCount: 1, sleepCount: 0 });
		await sleep(SLEEP_TIMEOUT + 250);
		assert.deepEqual(await sleepActor.getCounts(), { startCount: 1, sleepCount: 0 });
	});

	t.test("async websocket addEventListener message handler delays sleep", { engineTodo: ENGINE_SHORT_SLEEP }, async (ctx) => {
		const actor = ctx.client.sleepRawWsAddEventListenerMessage.getOrCreate(key("ws-msg-delay"));
		const { ws, q } = await connectRaw(ctx, actor);
		ws.send("track-message");
		assert.equal((await q.json()).type, "message-started");
		await closeRawWebSocket(ws);
		// Past the 100 ms sleep timeout, while the 250 ms handler still runs.
		await sleep(RAW_WS_HANDLER_SLEEP_TIMEOUT + 20);
		const status = await actor.getStatus();
		assert.equal(status.startCount, 1);
		assert.equal(status.sleepCount, 0);
		assert.equal(status.messageStarted, 1);
		await afterIdle(
			RAW_WS_HANDLER_DELAY + RAW_WS_HANDLER_SLEEP_TIMEOUT,
			() => actor.getStatus(),
			(s) =>
				s.startCount === 2 &&
				s.sleepCount === 1 &&
				s.messageStarted === 1 &&
				s.messageFinished === 1,
		);
	});

	t.test("async websocket onmessage handler delays sleep", { engineTodo: ENGINE_SHORT_SLEEP }, async (ctx) => {
		const actor = ctx.client.sleepRawWsOnMessage.getOrCreate(key("ws-onmessage"));
		const { ws } = await connectRawWithRetry(ctx, actor);
		ws.send("track-message");
		await sleep(50);
		await closeRawWebSocket(ws);
		await afterIdle(
			RAW_WS_HANDLER_DELAY + RAW_WS_HANDLER_SLEEP_TIMEOUT,
			() => actor.getStatus(),
			(s) =>
				s.messageStarted === 1 &&
				s.messageFinished === 1 &&
				s.sleepCount >= 1 &&
				s.startCount === s.sleepCount + 1,
		);
	});

	t.test("async websocket addEventListener close handler delays sleep", { engineTodo: ENGINE_SHORT_SLEEP }, async (ctx) => {
		const actor = ctx.client.sleepRawWsAddEventListenerClose.getOrCreate(key("ws-close-delay"));
		const { ws } = await connectRaw(ctx, actor);
		await closeRawWebSocket(ws);
		await sleep(RAW_WS_HANDLER_SLEEP_TIMEOUT + 20);
		const status = await actor.getStatus();
		assert.equal(status.startCount, 1);
		assert.equal(status.sleepCount, 0);
		assert.equal(status.closeStarted, 1);
		await afterIdle(
			RAW_WS_HANDLER_DELAY + RAW_WS_HANDLER_SLEEP_TIMEOUT,
			() => actor.getStatus(),
			(s) =>
				s.startCount === 2 && s.sleepCount === 1 && s.closeStarted === 1 && s.closeFinished === 1,
		);
	});

	t.test("async websocket onclose handler delays sleep", { engineTodo: ENGINE_SHORT_SLEEP }, async (ctx) => {
		const actor = ctx.client.sleepRawWsOnClose.getOrCreate(key("ws-onclose"));
		const { ws } = await connectRawWithRetry(ctx, actor);
		await closeRawWebSocket(ws);
		await afterIdle(
			RAW_WS_HANDLER_DELAY + RAW_WS_HANDLER_SLEEP_TIMEOUT,
			() => actor.getStatus(),
			(s) =>
				s.closeStarted === 1 &&
				s.closeFinished === 1 &&
				s.sleepCount >= 1 &&
				s.startCount === s.sleepCount + 1,
		);
	});

	for (const [name, fixture, opts] of [
		["onSleep sends message to raw websocket", "sleepRawWsSendOnSleep", {}],
		[
			"onSleep sends delayed message to raw websocket",
			"sleepRawWsDelayedSendOnSleep",
			{ engineTodo: "flaky on the engine target: in one idle full-cell run (2026-12-03 20:22 UTC) the socket closed with 1000 actor.stopped before the message onSleep sends after its delay reached the client; passes in most runs; not investigated" },
		],
	]) {
		t.test(name, opts, async (ctx) => {
			const sleepActor = ctx.client[fixture].getOrCreate(key("send-on-sleep"));
			const { ws, q } = await connectRaw(ctx, sleepActor);
			const message = q.ofType("sleeping");
			await sleepActor.triggerSleep();
			const msg = await message;
			assert.equal(msg.type, "sleeping");
			assert.equal(msg.sleepCount, 1);
			try {
				ws.close();
			} catch {}
			await until(() => sleepActor.getCounts(), sleptOnce);
		});
	}

	t.test("waitUntil in onSleep keeps c.vars available during grace", { engineTodo: ENGINE_SHORT_SLEEP }, async ({ client }) => {
		const actor = client.sleepWaitUntilVarsDuringGrace.getOrCreate(
			key("waituntil-vars-during-grace"),
		);
		await actor.triggerSleep();
		const status = await until(
			() => actor.getStatus(),
			(s) => s.sleepCount >= 1,
		);
		assert.equal(status.sleepCount, 1);
		assert.equal(status.waitUntilStarted, 1);
	});

	t.test("c.vars access in ws handler should not crash after grace deadline", { engineTodo: ENGINE_SHORT_SLEEP }, async (ctx) => {
		const actor = ctx.client.sleepRawWsVarsExceedsGrace.getOrCreate(key("ws-vars-exceeds-grace"));
		const { ws, q } = await connectRaw(ctx, actor);
		ws.send("slow-vars-work");
		await q.ofType("started");
		await actor.triggerSleep();
		// Let the slow work's 2000 ms delay run out after the sleep (that is
		// what the test is about), then wake the actor.
		await sleep(VARS_EXCEEDS_GRACE_DELAY + VARS_EXCEEDS_GRACE_SLEEP_TIMEOUT + 500);
		const status = await until(
			() => actor.getStatus(),
			(s) => s.sleepCount >= 1,
		);
		assert.ok(status.sleepCount >= 1);
		assert.equal(status.handlerStarted, 1);
	});
});
