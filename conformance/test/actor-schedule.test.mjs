// Port of rivetkit tests/driver/actor-schedule.test.ts (real timers, short
// delays). "scheduled action can use c.db" is not ported: it needs SQLite
// (scheduledDb), which the Go fixtures do not have.
import assert from "node:assert/strict";
import { collectEvents, matrix, waitFor } from "./harness.mjs";

matrix("Actor Schedule", (t) => {
	t.describe("Scheduled Alarms", () => {
		t.test("executes c.schedule.at() with specific timestamp", async ({ client }) => {
			const scheduled = client.scheduled.getOrCreate();
			const before = Date.now();
			const timestamp = before + 250;
			assert.equal(await scheduled.scheduleTaskAt(timestamp), timestamp);
			await waitFor(async () => assert.equal(await scheduled.getScheduledCount(), 1), {
				timeout: 10_000,
			});
			const lastRun = await scheduled.getLastRun();
			assert.ok(lastRun > 0);
			// It fired at (or after) its time, not when it was scheduled.
			assert.ok(lastRun >= timestamp - 50, `lastRun ${lastRun} < ${timestamp}`);
		});

		t.test("executes c.schedule.after() with delay", async ({ client }) => {
			const scheduled = client.scheduled.getOrCreate();
			const before = Date.now();
			await scheduled.scheduleTaskAfter(250);
			await waitFor(async () => assert.equal(await scheduled.getScheduledCount(), 1), {
				timeout: 10_000,
			});
			const lastRun = await scheduled.getLastRun();
			assert.ok(lastRun >= before + 200, `ran ${lastRun - before} ms after scheduling`);
		});

		t.test("multiple scheduled tasks execute in order", async ({ client }) => {
			const scheduled = client.scheduled.getOrCreate();
			await scheduled.clearHistory();
			await scheduled.scheduleTaskAfterWithId("first", 250);
			await scheduled.scheduleTaskAfterWithId("second", 750);
			await scheduled.scheduleTaskAfterWithId("third", 1250);
			await waitFor(async () => assert.equal((await scheduled.getTaskHistory())[0], "first"), {
				timeout: 10_000,
			});
			await waitFor(
				async () =>
					assert.deepEqual((await scheduled.getTaskHistory()).slice(0, 2), ["first", "second"]),
				{
					timeout: 10_000,
				},
			);
			await waitFor(
				async () =>
					assert.deepEqual(await scheduled.getTaskHistory(), ["first", "second", "third"]),
				{
					timeout: 10_000,
				},
			);
			assert.equal(await scheduled.getScheduledCount(), 3);
		});

		t.test("scheduled actions broadcast to connected clients", async ({ client }) => {
			const conn = client.scheduled.getOrCreate().connect();
			const events = collectEvents(conn, "scheduledWithId", 1);
			await conn.scheduleTaskAfterWithId("evt", 100);
			const [event] = await events;
			assert.equal(event.taskId, "evt");
			assert.equal(event.count, 1);
			assert.equal(typeof event.time, "number");
			await conn.dispose();
		});
	});
});
