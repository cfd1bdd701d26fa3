// client.mjs — this project's own client of the reference chat's wire
// protocol. It puts on the wire exactly what the reference chat's two clients
// do (its Node smoke client and its browser page) and reads back the same
// events and fields they read; the tests in this directory use it. Written
// for ws-chat; it shares no code with the reference.
//
// What those two clients do, and so all this client does:
// - connect to ws://localhost:8080/chat (the page: its own host and /chat)
//   with the query parameters token, name and room, in that order, and
//   nothing else: neither client ever sends since or epoch, and the page's
//   reconnect repeats the very same query;
// - send the Origin of the page, http://localhost:8080 (a browser sends the
//   page's origin; the smoke client sends this one explicitly);
// - send {"type":"message","text":...} frames (the page trims the text first
//   and sends nothing when it is empty);
// - read `system` and `presence` through their `message`, `history` through
//   `messages` (its length, each one's `from` and `text`), `message` through
//   `message.from` and `message.text`, `error` through `code` and `message`;
// - close with 1000 (the smoke client: "done"; the page: "user disconnected")
//   and, for the smoke client, expect 1000 back.
import WebSocket from "ws";

export const CHAT_URL = "ws://localhost:8080/chat";
export const PAGE_ORIGIN = "http://localhost:8080";
export const DEFAULT_TOKEN = "dev-token";
const WAIT_MS = 5_000; // the smoke client gives the whole exchange 5 s

/**
 * The URL the page builds from its token, name and room fields (an empty
 * field is sent empty). null leaves a parameter out, which neither client
 * does; the tests use it for a missing token.
 */
export function chatUrl({ token = DEFAULT_TOKEN, name, room } = {}) {
  const url = new URL(CHAT_URL);
  for (const [key, value] of Object.entries({ token, name, room })) {
    if (value !== undefined && value !== null) url.searchParams.set(key, value);
  }
  return url;
}

/** One connection, with every event it received queued in arrival order. */
export class ChatClient {
  #ws;
  #events = [];
  #waiters = [];
  #closed;

  /**
   * Opens a connection like the page does. Resolves once the upgrade
   * succeeded; rejects with an Error whose `status` is the HTTP status when
   * the server refused the upgrade.
   */
  static open({ token, name, room, origin = PAGE_ORIGIN } = {}) {
    const ws = new WebSocket(chatUrl({ token, name, room }), {
      headers: origin === undefined ? {} : { Origin: origin },
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { ws.terminate(); reject(new Error(`no answer to the upgrade within ${WAIT_MS} ms`)); }, WAIT_MS);
      ws.once("unexpected-response", (_req, res) => {
        clearTimeout(timer);
        const err = new Error(`upgrade refused with HTTP ${res.statusCode}`);
        err.status = res.statusCode;
        res.resume();
        ws.terminate();
        reject(err);
      });
      ws.once("error", (err) => { clearTimeout(timer); reject(err); });
      ws.once("open", () => { clearTimeout(timer); resolve(new ChatClient(ws)); });
    });
  }

  constructor(ws) {
    this.#ws = ws;
    this.#closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        resolve({ code, reason: reason.toString("utf8") });
        this.#wake();
      });
    });
    ws.on("error", () => {}); // a failed socket also closes; the close is what tests see
    ws.on("message", (raw, isBinary) => {
      // Both reference clients JSON.parse every frame as UTF-8 text.
      this.#events.push(isBinary ? { type: "<binary frame>" } : JSON.parse(raw.toString("utf8")));
      this.#wake();
    });
  }

  #wake() {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  get isOpen() {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  /** The next event, whatever its type (for checking the order of events). */
  next(ms = WAIT_MS) {
    return this.nextMatching("the next event", () => true, ms, { skip: false });
  }

  /** The next event of this type, passing over events of other types. */
  nextOf(type, ms = WAIT_MS) {
    return this.nextMatching(`a ${type} event`, (e) => e.type === type, ms);
  }

  /**
   * The first queued or future event for which `match` is true; events
   * before it are dropped (unless skip is false: then the next event must
   * match). Rejects after `ms`, listing what arrived instead.
   */
  async nextMatching(what, match, ms = WAIT_MS, { skip = true } = {}) {
    const deadline = Date.now() + ms;
    const passed = [];
    for (;;) {
      while (this.#events.length > 0) {
        const event = this.#events.shift();
        if (match(event)) return event;
        if (!skip) throw new Error(`expected ${what}, got ${JSON.stringify(event)}`);
        passed.push(event);
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.#ws.readyState === WebSocket.CLOSED) {
        const state = this.#ws.readyState === WebSocket.CLOSED ? "the connection closed" : `${ms} ms passed`;
        throw new Error(`${state} before ${what}; received instead: ${JSON.stringify(passed)}`);
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /** Sends a chat message the way both clients do. */
  say(text) {
    this.#ws.send(JSON.stringify({ type: "message", text }));
  }

  /** Closes with 1000 and resolves with the close code and reason received back. */
  async close(reason = "done") {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.close(1000, reason);
    const timer = setTimeout(() => this.#ws.terminate(), WAIT_MS);
    const closed = await this.#closed;
    clearTimeout(timer);
    return closed;
  }

  /** Connects, then takes the three events every join starts with. */
  static async join(opts = {}) {
    const client = await ChatClient.open(opts);
    const system = await client.next();
    const history = await client.next();
    const presence = await client.next();
    return { client, system, history, presence };
  }
}
