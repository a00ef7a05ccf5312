// Not upstream: a streamed onRequest response (StreamResponse) read
// incrementally through the official client's handle.fetch.
import assert from "node:assert/strict";
import { matrix } from "./harness.mjs";

matrix("Raw Http Stream", (t) => {
	t.test("a Server-Sent Events stream arrives as it is written", { engineTodo: "rivet-engine 2.3.19 never asks for a streamed response (responseStream=false) and empties one it did not ask for: through the engine the body arrives whole at the end (docs/engine-runner.md §6)" }, async ({ client }) => {
		const actor = client.rawHttpStreamActor.getOrCreate(["sse"]);
		const res = await actor.fetch("sse", { headers: { Accept: "text/event-stream" } });
		assert.equal(res.ok, true);
		assert.equal(res.headers.get("content-type"), "text/event-stream");
		const reader = res.body.getReader();
		const decoder = new TextDecoder();
		let text = "";
		// The stream cannot end before release: reading "start" first
		// proves it arrived while the handler was still running.
		while (!text.includes("\n\n")) {
			const { value, done } = await reader.read();
			assert.equal(done, false, `stream ended early: ${JSON.stringify(text)}`);
			text += decoder.decode(value, { stream: true });
		}
		assert.equal(text, "data: start 1\n\n");
		await actor.release();
		for (;;) {
			const { value, done } = await reader.read();
			if (done) break;
			text += decoder.decode(value, { stream: true });
		}
		assert.equal(text, "data: start 1\n\ndata: end 2\n\n");
	});
});
