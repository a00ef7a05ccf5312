// Calls a counter through a Rivet Engine with the official client, the
// way an application would: createClient(the engine's endpoint), then
// getOrCreate and actions. Prints the results as one JSON line. Used by
// TestEngineRunnerOfficialClient (runner_test.go at the repository root)
// with ENDPOINT set to the engine's guard URL and ENCODING to json, cbor
// or bare.
import { createClient } from "rivetkit/client";

const client = createClient({
	endpoint: process.env.ENDPOINT,
	encoding: process.env.ENCODING ?? "bare",
});
const counter = client.counter.getOrCreate([process.env.KEY ?? "x"]);
const first = await counter.increment(1);
const second = await counter.increment(2);
const count = await counter.getCount();
let error = null;
try {
	await counter.fail(7);
} catch (e) {
	error = { group: e.group, code: e.code };
}
console.log(JSON.stringify({ first, second, count, error }));
await client.dispose();
