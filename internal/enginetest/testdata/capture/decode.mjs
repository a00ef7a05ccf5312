// Decodes recorded envoy frames with @rivetkit/engine-envoy-protocol 2.3.19
// (the npm package's own generated code): reads JSON lines
// {seq, kind, dir, hex, ...} on stdin and prints them again with "decoded".
import { decodeToEnvoy, decodeToRivet } from "@rivetkit/engine-envoy-protocol";
import { createInterface } from "node:readline";

const plain = (v) => {
	if (typeof v === "bigint") return v.toString();
	if (v instanceof ArrayBuffer) return { hex: Buffer.from(v).toString("hex") };
	if (ArrayBuffer.isView(v)) return { hex: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex") };
	if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
	if (Array.isArray(v)) return v.map(plain);
	if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
	return v;
};

for await (const line of createInterface({ input: process.stdin })) {
	if (!line.trim()) continue;
	const f = JSON.parse(line);
	// Only runner sockets speak the envoy protocol; client_frame records
	// (a client's socket through the gateway) keep their hex only.
	if (f.kind === "frame" && f.hex !== undefined) {
		// A plain Uint8Array, not a Buffer: bare-ts copies data fields with
		// slice(), which on a Buffer is a view into Node's shared pool.
		const bytes = new Uint8Array(Buffer.from(f.hex, "hex"));
		try {
			f.decoded = plain(f.dir === "to_rivet" ? decodeToRivet(bytes) : decodeToEnvoy(bytes));
		} catch (e) {
			f.decode_error = String(e);
		}
	}
	console.log(JSON.stringify(f));
}
