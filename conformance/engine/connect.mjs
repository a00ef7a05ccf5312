// Opens a connection to a counter through a Rivet Engine with the
// official client, subscribes to its newCount event, calls increment over
// the connection and waits for the event. Prints one JSON line. Used by
// TestEngineRunnerOfficialClientConnection (runner_test.go at the
// repository root); ENDPOINT, ENCODING and KEY as for client.mjs.
import { createClient } from "rivetkit/client";

const client = createClient({
	endpoint: process.env.ENDPOINT,
	encoding: process.env.ENCODING ?? "bare",
});
const conn = client.counter.getOrCreate([process.env.KEY ?? "x"]).connect();
const events = [];
const got = new Promise((resolve) => {
	conn.on("newCount", (n) => {
		events.push(n);
		if (events.length === 2) resolve();
	});
});
const first = await conn.increment(1);
const second = await conn.increment(2);
await Promise.race([got, new Promise((_, reject) => setTimeout(() => reject(new Error(`events so far: ${JSON.stringify(events)}`)), 20000))]);
await conn.dispose();
console.log(JSON.stringify({ first, second, events }));
await client.dispose();
// The client keeps the process alive for ~20 s after dispose (also
// against rivet serve without an engine); nothing is left to wait for.
process.exit(0);
