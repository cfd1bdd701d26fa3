// reference-clients.test.mjs — the compatibility promise, tested on every
// clone: what the reference chat's smoke client and browser page do on the
// wire works against ws-chat started with no configuration. Each test names
// the client behaviour it stands for. Checks marked (ext) are ws-chat's own
// additions and are left out when COMPAT_SERVER is the reference itself.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ChatClient, DEFAULT_TOKEN } from "./client.mjs";
import { IS_REFERENCE, SERVER_NAME, startServer } from "./server.mjs";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
// Rooms of their own per run, so that history holds only this run's messages.
const RUN = `c${process.pid}`;
const room = (name) => `${RUN}-${name}`;

let server;
before(async () => {
  server = await startServer();
  console.log(`server under test: ${SERVER_NAME}`);
});
after(async () => {
  await server?.stop();
});

/** The fields of a chat message; the page itself reads only from and text. */
function assertMessage(message, { room: inRoom, from, text }) {
  assert.equal(message.from, from);
  assert.equal(message.text, text);
  assert.equal(message.room, inRoom);
  assert.match(message.id, UUID);
  assert.match(message.sentAt, ISO_MILLIS);
  if (!IS_REFERENCE) assert.ok(Number.isSafeInteger(message.seq) && message.seq > 0, `(ext) seq: ${message.seq}`);
}

test("smoke client: token/name/room query and Origin, hello echoed back, closed with 1000 both ways", async () => {
  // Exactly the smoke client's exchange: name smoke in the lobby.
  const { client, system, history, presence } = await ChatClient.join({ token: DEFAULT_TOKEN, name: "smoke", room: "lobby" });
  assert.equal(system.type, "system");
  assert.equal(history.type, "history");
  assert.equal(presence.type, "presence");
  client.say("hello from smoke test");
  const echo = await client.nextMatching("the echo of the smoke message",
    (e) => e.type === "message" && e.message.text === "hello from smoke test");
  assertMessage(echo.message, { room: "lobby", from: "smoke", text: "hello from smoke test" });
  const closed = await client.close("done");
  assert.equal(closed.code, 1000, "the smoke client exits 1 unless the close code is 1000");
});

test("page: connecting shows system, then history, then presence, each with the fields the page renders", async () => {
  const { client, system, history, presence } = await ChatClient.join({ name: "masa", room: room("join") });
  assert.equal(system.type, "system");
  assert.equal(system.message, "connected as masa");
  assert.equal(typeof system.clientId, "string");
  assert.equal(history.type, "history");
  assert.ok(Array.isArray(history.messages), "the page reads history.messages.length");
  assert.equal(history.messages.length, 0, "a new room has no history");
  assert.equal(presence.type, "presence");
  assert.equal(presence.message, "masa joined");
  assert.equal(presence.online, 1);
  assert.equal((await client.close("user disconnected")).code, 1000);
});

test("page: a page opened as http://127.0.0.1:8080 is accepted too", async () => {
  const { client, system } = await ChatClient.join({ name: "masa", room: room("ip"), origin: "http://127.0.0.1:8080" });
  assert.equal(system.message, "connected as masa");
  await client.close("user disconnected");
});

test("page: a message reaches everyone in the room with from and text; others see join and leave", async () => {
  const r = room("talk");
  const a = await ChatClient.join({ name: "ana", room: r });
  const b = await ChatClient.join({ name: "bo", room: r });
  assert.equal(b.presence.message, "bo joined");
  assert.equal(b.presence.online, 2);
  const seenByA = await a.client.nextOf("presence");
  assert.equal(seenByA.message, "bo joined");
  assert.equal(seenByA.online, 2);

  a.client.say("안녕하세요 👋"); // the page is Korean: non-ASCII text goes through as is
  for (const c of [a.client, b.client]) {
    const got = await c.nextOf("message");
    assertMessage(got.message, { room: r, from: "ana", text: "안녕하세요 👋" });
  }

  await b.client.close("user disconnected");
  const left = await a.client.nextOf("presence");
  assert.equal(left.message, "bo left");
  assert.equal(left.online, 1);
  await a.client.close("user disconnected");
});

test("page: reconnecting with the same query gets the room's history, oldest first", async () => {
  // The page's reconnect sends token, name and room again, never since or
  // epoch, and renders every message of the history event.
  const r = room("history");
  const first = await ChatClient.join({ name: "masa", room: r });
  const texts = ["one", "two", "three"];
  for (const text of texts) {
    first.client.say(text);
    await first.client.nextMatching(`the echo of ${text}`, (e) => e.type === "message" && e.message.text === text);
  }
  await first.client.close("user disconnected");

  const again = await ChatClient.join({ name: "masa", room: r });
  assert.equal(again.history.type, "history");
  assert.deepEqual(again.history.messages.map((m) => m.text), texts);
  for (const [i, m] of again.history.messages.entries()) assertMessage(m, { room: r, from: "masa", text: texts[i] });
  await again.client.close("user disconnected");
});

test("page: a name or room the protocol refuses becomes guest / lobby", async () => {
  // The page sends whatever its fields hold: a Korean name is not [\w -].
  const { client, system, presence } = await ChatClient.join({ name: "민수", room: "방 하나" });
  assert.equal(system.message, "connected as guest");
  assert.equal(presence.message, "guest joined");
  client.say("where am I");
  const got = await client.nextMatching("the echo", (e) => e.type === "message" && e.message.text === "where am I");
  assert.equal(got.message.room, "lobby");
  await client.close("user disconnected");
});

test("page: an over-long message gets an error event with code too_large and a message; the connection stays", async () => {
  const { client } = await ChatClient.join({ name: "masa", room: room("long") });
  client.say("x".repeat(600));
  const error = await client.nextOf("error");
  assert.equal(error.code, "too_large");
  assert.equal(typeof error.message, "string");
  assert.ok(error.message.length > 0, "the page shows `${code}: ${message}`");
  assert.ok(client.isOpen, "the connection stays open");
  client.say("short again");
  const got = await client.nextOf("message");
  assert.equal(got.message.text, "short again");
  await client.close("user disconnected");
});

test("page: sending faster than the rate limit gets error events rate_limited; the connection stays", async () => {
  // The page does not pace what the user sends; the server answers with
  // errors the page shows, and keeps the connection.
  const { client } = await ChatClient.join({ name: "masa", room: room("rate") });
  for (let i = 0; i < 25; i += 1) client.say(`burst ${i}`);
  const error = await client.nextOf("error");
  assert.equal(error.code, "rate_limited");
  assert.equal(typeof error.message, "string");
  assert.ok(client.isOpen, "the connection stays open");
  await client.close("user disconnected");
});

test("a wrong Origin is refused with 403 before any WebSocket exists", async () => {
  await assert.rejects(ChatClient.open({ name: "masa", room: room("origin"), origin: "http://evil.example" }), { status: 403 });
  await assert.rejects(ChatClient.open({ name: "masa", room: room("origin"), origin: "http://localhost:8081" }), { status: 403 });
});

test("a wrong, empty or missing token is refused with 401", async () => {
  await assert.rejects(ChatClient.open({ token: "not-the-token", name: "masa", room: room("token") }), { status: 401 });
  // The page with its token field cleared sends token= (empty).
  await assert.rejects(ChatClient.open({ token: "", name: "masa", room: room("token") }), { status: 401 });
  await assert.rejects(ChatClient.open({ token: null, name: "masa", room: room("token") }), { status: 401 });
});
