import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The Go server serves dist/ (embedded in the binary) and the actor
// gateway at the same origin. `npm run dev` serves the page with hot
// reload on :5173 and forwards the gateway routes to a Go server on :6420
// (go run ./cmd/rivet serve --example chat).
const goServer = process.env.RIVET_ENDPOINT ?? "http://127.0.0.1:6420";

export default defineConfig({
	plugins: [react()],
	build: {
		outDir: "dist",
		emptyOutDir: true,
		// Keep the embedded assets small and reproducible.
		sourcemap: false,
	},
	server: {
		proxy: {
			"/metadata": goServer,
			"/actors": goServer,
			"/devtools": goServer,
			"/gateway": { target: goServer, ws: true },
		},
	},
});
