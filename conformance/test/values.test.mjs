// Not upstream: a JS Date reaches a Go time.Time and comes back (see
// docs/concepts/values.md). cbor and bare clients get a Date back; json
// clients get its ISO string, as JSON.stringify makes of a Date.
import assert from "node:assert/strict";
import { matrix } from "./harness.mjs";

const asMillis = (v, encoding) => {
	if (encoding === "json") {
		assert.equal(typeof v, "string");
		return new Date(v).getTime();
	}
	assert.ok(v instanceof Date, `want a Date, got ${typeof v} ${v}`);
	return v.getTime();
};

matrix("Values", (t) => {
	t.test("a Date round-trips through a time.Time", async ({ client, combo }) => {
		const handle = client.valuesActor.getOrCreate(["dates"]);
		const d = new Date(Date.UTC(2026, 11, 3, 9, 33, 46, 123));
		assert.equal(await handle.describeTime(d), "2026-12-03T09:33:46.123Z");
		assert.equal(await handle.describeTime(new Date(-1)), "1969-12-31T23:59:59.999Z");
		assert.equal(asMillis(await handle.addMillis(d, 1), combo.encoding), d.getTime() + 1);
		await handle.storeTime(d);
		assert.equal(asMillis(await handle.storedTime(), combo.encoding), d.getTime());
	});
});
