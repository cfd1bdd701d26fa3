// The Bun peer of the side-by-side benchmark (loadtest/bench.py, server
// "bun"): a chat server on Bun.serve that speaks protocol version 1 of
// ws-chat as the Node reference chat does, so that one load generator can
// drive it unchanged. Rooms are Bun (uWebSockets) topics: each connection
// subscribes to its room and every event for the room goes out through one
// server.publish, which is the fan-out this peer is here to measure.
//
// Version 1 only: one room per connection (name and room from the query
// string), no `join`, no `seq`, no resume; history lives in memory. It is
// written for ws-chat's benchmark and shares no code with the reference.
//
// Environment, as the reference reads it: PORT (8080), CHAT_TOKEN
// (dev-token), ALLOWED_ORIGINS (comma list; default http://localhost:<port>
// and http://127.0.0.1:<port>). HOST (default 0.0.0.0, all interfaces).
const port = Number(process.env.PORT ?? 8080);
const token = process.env.CHAT_TOKEN ?? "dev-token";
const origins = new Set(
  (process.env.ALLOWED_ORIGINS ?? `http://localhost:${port},http://127.0.0.1:${port}`)
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "")
);

const MAX_TEXT = 500; // characters (UTF-16 code units, as String.length counts)
const HISTORY = 50; // messages kept per room and sent on join
const QUOTA = 20; // messages per connection per window
const WINDOW_MS = 10_000;

const histories = new Map(); // room -> the last HISTORY messages, oldest first
const members = new Map(); // room -> open connections in it
let connections = 0;

const NAME_OK = /^[\w -]+$/;
const ROOM_OK = /^[a-zA-Z0-9_-]+$/;

/** The query's name: up to 24 characters of [A-Za-z0-9_ -], else guest. */
function nameFrom(raw) {
  const name = (raw ?? "guest").trim().slice(0, 24);
  return NAME_OK.test(name) ? name : "guest";
}

/** The query's room: up to 32 characters of [A-Za-z0-9_-], else lobby. */
function roomFrom(raw) {
  const room = (raw ?? "lobby").trim().slice(0, 32);
  return ROOM_OK.test(room) ? room : "lobby";
}

/** A refused upgrade: the status line only, and the connection closed. */
function refuse(status) {
  return new Response(null, { status, headers: { connection: "close" } });
}

function errorEvent(code, message) {
  return JSON.stringify({ type: "error", code, message });
}

const TOO_FAST = errorEvent("rate_limited", "Too many messages. Wait a moment.");
const TOO_LONG = errorEvent("too_large", `Message must be ${MAX_TEXT} characters or less.`);
const NOT_JSON = errorEvent("bad_json", 'Send JSON such as {"type":"message","text":"hi"}.');
const NOT_MESSAGE = errorEvent("bad_type", "Only message events are accepted.");
const NO_TEXT = errorEvent("empty", "Message text is required.");

/** Counts one message against the connection's window; false when over. */
function withinQuota(data) {
  const now = Date.now();
  if (now > data.windowEnds) {
    data.windowEnds = now + WINDOW_MS;
    data.sent = 0;
  }
  data.sent += 1;
  return data.sent <= QUOTA;
}

function presence(room, message) {
  server.publish(room, JSON.stringify({ type: "presence", message, online: members.get(room) ?? 0 }));
}

const server = Bun.serve({
  port,
  hostname: process.env.HOST ?? "0.0.0.0",
  fetch(req, server) {
    const url = new URL(req.url);
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      // Readiness, at exactly /healthz as the reference answers it; the
      // reference's page at / is not served here: this peer is for loadgen.
      if (url.pathname + url.search === "/healthz") {
        const body = JSON.stringify({ ok: true, clients: connections });
        return new Response(body, { headers: { "content-type": "application/json" } });
      }
      return new Response("not found", { status: 404, headers: { "content-type": "text/plain; charset=utf-8" } });
    }
    // Refused before any WebSocket exists, checked in the reference's order.
    if (url.pathname !== "/chat") return refuse(404);
    if (!origins.has(req.headers.get("origin") ?? "")) return refuse(403);
    if (url.searchParams.get("token") !== token) return refuse(401);
    const data = {
      id: crypto.randomUUID(),
      name: nameFrom(url.searchParams.get("name")),
      room: roomFrom(url.searchParams.get("room")),
      windowEnds: Date.now() + WINDOW_MS,
      sent: 0,
    };
    if (server.upgrade(req, { data })) return undefined;
    return new Response("bad WebSocket upgrade", { status: 400 });
  },
  websocket: {
    // No compression (every server in the benchmark sends plain frames);
    // frames up to 2 KiB, as the reference's `ws` accepts.
    perMessageDeflate: false,
    maxPayloadLength: 2048,
    // The reference pings every 30 s and drops a connection that did not
    // answer the previous ping; here uWebSockets pings a quiet connection
    // and closes it after 60 s without a frame.
    idleTimeout: 60,
    sendPings: true,
    open(ws) {
      const { id, name, room } = ws.data;
      connections += 1;
      members.set(room, (members.get(room) ?? 0) + 1);
      ws.subscribe(room);
      ws.send(JSON.stringify({ type: "system", message: `connected as ${name}`, clientId: id }));
      ws.send(JSON.stringify({ type: "history", messages: histories.get(room) ?? [] }));
      // server.publish reaches every subscriber, the newcomer too, as the
      // reference's broadcast does.
      presence(room, `${name} joined`);
    },
    message(ws, raw) {
      if (typeof raw !== "string") {
        ws.close(1003, "text messages only");
        return;
      }
      const { name, room } = ws.data;
      if (!withinQuota(ws.data)) return void ws.send(TOO_FAST);
      if (raw.length > MAX_TEXT) return void ws.send(TOO_LONG);
      let event;
      try {
        event = JSON.parse(raw);
      } catch {
        return void ws.send(NOT_JSON);
      }
      if (event?.type !== "message") return void ws.send(NOT_MESSAGE);
      const text = String(event.text ?? "").trim();
      if (text === "") return void ws.send(NO_TEXT);
      const message = { id: crypto.randomUUID(), room, from: name, text, sentAt: new Date().toISOString() };
      let history = histories.get(room);
      if (history === undefined) histories.set(room, (history = []));
      history.push(message);
      if (history.length > HISTORY) history.splice(0, history.length - HISTORY);
      // To the whole room, the sender included (the reference echoes).
      server.publish(room, JSON.stringify({ type: "message", message }));
    },
    close(ws) {
      // Bun has already taken the connection off its topics.
      const { name, room } = ws.data;
      connections -= 1;
      const left = (members.get(room) ?? 1) - 1;
      if (left > 0) members.set(room, left);
      else members.delete(room);
      presence(room, `${name} left`);
    },
  },
});

console.log(`ws-chat Bun peer (protocol v1) on ${server.hostname}:${server.port}, Bun ${Bun.version}`);
