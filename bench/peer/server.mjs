// The RivetKit side of the comparison: the same two actors as rivetgo's demo
// registry (examples/demo), served by rivetkit's registry.start(), which
// spawns the rivet-engine binary shipped in @rivetkit/engine-cli.
import { actor, setup } from "rivetkit";

const counter = actor({
	state: { count: 0 },
	actions: {
		increment: (c, n) => {
			c.state.count += n;
			c.broadcast("newCount", c.state.count);
			return c.state.count;
		},
		getCount: (c) => c.state.count,
	},
});

const chatRoom = actor({
	state: { messages: [] },
	actions: {
		sendMessage: (c, user, text) => {
			const message = { user, text, ts: Date.now() };
			c.state.messages.push(message);
			c.broadcast("newMessage", message);
			return message;
		},
		getHistory: (c) => c.state.messages,
	},
});

export const registry = setup({ use: { counter, chatRoom } });
registry.start();
