import { createRivetKit } from "@rivetkit/react";
import { useCallback, useEffect, useRef, useState } from "react";

// The Go server serves this page and the actor gateway at the same
// origin, so the client talks to the page's own origin.
const { useActor } = createRivetKit(window.location.origin);

const NAME_KEY = "rivetgo-chat-name";

export function App() {
	const params = new URLSearchParams(window.location.search);
	const [session, setSession] = useState(null);
	const [name, setName] = useState(() => localStorage.getItem(NAME_KEY) ?? "");
	const [room, setRoom] = useState(params.get("room") ?? "lobby");

	if (session) {
		return (
			<ChatRoom
				key={`${session.room}/${session.name}`}
				name={session.name}
				room={session.room}
				onLeave={() => setSession(null)}
			/>
		);
	}

	const join = (e) => {
		e.preventDefault();
		const n = name.trim();
		const r = room.trim() || "lobby";
		if (!n) return;
		localStorage.setItem(NAME_KEY, n);
		setSession({ name: n, room: r });
	};

	return (
		<main className="card">
			<h1>rivetgo chat</h1>
			<p className="hint">
				Every room is a <code>chatRoom</code> actor on the Go server: its history is
				durable, and messages reach everyone in the room as events.
			</p>
			<form id="join-form" onSubmit={join}>
				<label>
					Your name
					<input
						id="name"
						autoFocus
						autoComplete="nickname"
						maxLength={40}
						value={name}
						onChange={(e) => setName(e.target.value)}
					/>
				</label>
				<label>
					Room
					<input id="room" maxLength={60} value={room} onChange={(e) => setRoom(e.target.value)} />
				</label>
				<button id="join" type="submit" disabled={!name.trim()}>
					Join
				</button>
			</form>
		</main>
	);
}

// messageKey identifies a message: the room stamps each with the time it
// was sent, and a sender does not send the same text twice in one
// millisecond.
const messageKey = (m) => `${m.ts}|${m.user}|${m.text}`;

// merge returns the history followed by the messages received as events
// that the history does not already hold.
function merge(history, live) {
	const seen = new Set(history.map(messageKey));
	return [...history, ...live.filter((m) => !seen.has(messageKey(m)))];
}

function ChatRoom({ name, room, onLeave }) {
	const chat = useActor({ name: "chatRoom", key: [room] });
	const [messages, setMessages] = useState([]);
	const [loaded, setLoaded] = useState(false);
	const [text, setText] = useState("");
	const [error, setError] = useState(null);
	const listRef = useRef(null);

	// Events from the room, in order. Subscribed before the history is
	// fetched so that nothing sent in between is missed; merge drops the
	// messages that arrive both ways.
	chat.useEvent("newMessage", (m) => {
		setMessages((prev) => merge(prev, [m]));
	});

	const connected = chat.connStatus === "connected" && chat.connection;

	// History on every (re)connection.
	useEffect(() => {
		if (!connected) return;
		let live = true;
		chat.connection
			.getHistory()
			.then((history) => {
				if (!live) return;
				setMessages((prev) => merge(history ?? [], prev));
				setLoaded(true);
			})
			.catch((err) => live && setError(String(err?.message ?? err)));
		return () => {
			live = false;
		};
	}, [connected, chat.connection]);

	useEffect(() => {
		const el = listRef.current;
		if (el) el.scrollTop = el.scrollHeight;
	}, [messages]);

	const send = useCallback(
		async (e) => {
			e.preventDefault();
			const t = text.trim();
			if (!t || !chat.connection) return;
			setText("");
			try {
				await chat.connection.sendMessage(name, t);
				setError(null);
			} catch (err) {
				setError(String(err?.message ?? err));
				setText(t);
			}
		},
		[text, name, chat.connection],
	);

	return (
		<main className="card chat">
			<header>
				<h1>
					#<span id="room-name">{room}</span>
				</h1>
				<span id="status" className={`status ${chat.connStatus}`} data-status={chat.connStatus}>
					{chat.connStatus}
				</span>
				<button className="link" onClick={onLeave}>
					Leave
				</button>
			</header>
			<ul id="messages" ref={listRef} data-loaded={loaded ? "true" : "false"}>
				{loaded && messages.length === 0 && <li className="empty">No messages yet. Say hello!</li>}
				{messages.map((m) => (
					<li key={messageKey(m)} className={m.user === name ? "message mine" : "message"}>
						<span className="user">{m.user}</span>
						<span className="text">{m.text}</span>
						<time dateTime={new Date(m.ts).toISOString()}>
							{new Date(m.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}
						</time>
					</li>
				))}
			</ul>
			{(error || chat.error) && (
				<p id="error" className="error">
					{error ?? String(chat.error?.message ?? chat.error)}
				</p>
			)}
			<form id="send-form" onSubmit={send}>
				<input
					id="message"
					autoFocus
					placeholder={`Message #${room} as ${name}`}
					maxLength={2000}
					value={text}
					onChange={(e) => setText(e.target.value)}
				/>
				<button id="send" type="submit" disabled={!connected || !text.trim()}>
					Send
				</button>
			</form>
		</main>
	);
}
