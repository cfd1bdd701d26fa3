// app.js — the ws-chat browser page: the connection life (connect with the
// token as a subprotocol, reconnect with capped full-jitter backoff,
// rejection detection), identified users (the name from the token, session
// expiry and refresh from a token URL), several rooms on one connection
// (joined again with since/epoch after a reconnect), the bounded offline
// queue, and the wiring of the page. Strings: strings.js; the rooms, their
// logs and their resume state: rooms.js. Everything is rendered as text.
// Wire contract: docs/protocol.md. No framework, no build step, no inline code:
// the server's CSP allows only the page's own files (script-src 'self').
import { getLang, has, pickLanguage, setLang, t } from "./strings.js";
import * as rooms from "./rooms.js";

const MAX_CHARS = 500;          // PROTOCOL §3, in Unicode scalar values after trimming
const QUEUE_MAX = 20;           // offline queue bound
const BUFFER_LIMIT = 64 * 1024; // flush only while bufferedAmount is under this
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;
const STABLE_MS = 5_000;        // a connection open this long resets the backoff
// What the page sends by itself (joins after a reconnect, the offline queue)
// stays within the server's default per-connection budget: a burst of 20,
// then one every 500 ms (PROTOCOL §3), so none of it is refused as rate_limited.
const SEND_BURST = 20;
const SEND_EVERY_MS = 500;
const SUBPROTOCOL = "ws-chat.v2";            // PROTOCOL §7
const TOKEN_PROTOCOL = "ws-chat.token.";
// A subprotocol must be an RFC 2616 token (RFC 6455 §4.1); a JWT always is.
// A static token with other characters goes in ?token= instead.
const PROTOCOL_SAFE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const EXPIRY_RENEW_GAP_MS = 60_000; // at most one reconnect after 4001 per minute
// The answers to a `join` that refuse it (PROTOCOL §9, docs/protocol.md).
const JOIN_REFUSALS = new Set(["forbidden", "too_many_rooms", "already_joined", "bad_room", "unavailable", "room_full"]);

const $ = (sel) => document.querySelector(sel);
const el = {
  status: $("#status"), online: $("#online"), lang: $("#lang"), conn: $("#connection"),
  room: $("#room"), name: $("#name"), token: $("#token"), remember: $("#remember"),
  disconnect: $("#disconnect"), log: $("#log"), logTitle: $("#log-title"), queue: $("#queue"), form: $("#form"),
  message: $("#message"), error: $("#form-error"), note: $("#form-note"), counter: $("#counter"),
  nameHint: $("#name-hint"), identity: $("#identity"), whoami: $("#whoami"),
  sessionEnd: $("#session-end"), expires: $("#expires"), sessionNote: $("#session-note"),
  rooms: $("#rooms"), roomsBar: $("#rooms-bar"), joinForm: $("#join-form"), joinRoom: $("#join-room"),
  joinError: $("#join-error"), who: $("#who"), members: $("#members"), membersTitle: $("#members-title"),
  membersList: $("#members-list"), membersNote: $("#members-note"),
};

const store = {
  get: (k) => { try { return localStorage.getItem(`wschat.${k}`); } catch { return null; } },
  set: (k, v) => { try { localStorage.setItem(`wschat.${k}`, v); } catch { /* private mode */ } },
  del: (k) => { try { localStorage.removeItem(`wschat.${k}`); } catch { /* private mode */ } },
};

setLang(pickLanguage(store.get("lang")));
let status = { key: "offline", args: [], state: "offline" };

// Connection state. `wanted` is the user's intent; `everOpened` tells a
// rejected first attempt (server up, upgrade refused) from a later failure.
let socket = null;
let wanted = false;
let attempt = 0;
let everOpened = false;
let attemptsSinceConnect = 0;
let retryTimer = 0;
let flushTimer = 0;
let connectedWith = ""; // room, name and token of the current connect
let connRoom = null;    // the room in this connection's query string: events without `room` are its

// What /page-config.json said: where to fetch a fresh token (null: nowhere),
// and whether the server is one without it (the reference: a 404), which
// takes the token only in the query string and knows one room per connection.
let tokenUrl = null;
let legacyServer = false;

// Identity (PROTOCOL §8): set by a `system` event that names a user, for as
// long as the page means to stay connected with that token.
let identity = null;       // { user, name, expiresAt } or null (a guest)
let ownName = null;        // the name the user typed, while the token's is shown
let sessionNote = null;    // { key, at }: the expiry notice under the identity
let refreshing = false;    // fetching a token for `refresh`
let pendingToken = null;   // sent in `refresh`, adopted on `refreshed`
let renewingAfterExpiry = false; // the one reconnect after 4001 is under way
let lastExpiryRenewal = 0;

// What waits to be sent on this connection: joins first (a message to a room
// must follow its join), then the user's queued messages ({ room, text }).
let pendingJoins = [];
const queue = [];
const budget = { tokens: SEND_BURST, at: 0 };

// Test hook: read-only observations, a send that skips the client-side checks
// (the server must enforce them anyway), and a socket drop as a network would
// make one. Nothing here reveals the token.
const hook = { delays: [], attempts: 0, nextAttemptAt: 0, lastUrlParams: "", histories: 0, tokenIn: "", refreshes: 0 };
window.__wschat = Object.freeze({
  get delays() { return hook.delays.map((d) => ({ ...d })); },
  get attempts() { return hook.attempts; },
  get histories() { return hook.histories; },
  get identity() { return identity && { ...identity }; },
  get tokenIn() { return hook.tokenIn; },
  get tokenUrl() { return tokenUrl; },
  get refreshes() { return hook.refreshes; },
  get nextAttemptAt() { return hook.nextAttemptAt; },
  get resume() {
    const h = rooms.home();
    return { lastSeq: h?.lastSeq ?? null, epoch: h?.epoch ?? null, room: h?.name ?? null, params: hook.lastUrlParams };
  },
  get rooms() {
    return rooms.all().map((r) => ({
      name: r.name, state: r.state, reason: r.reason, lastSeq: r.lastSeq, epoch: r.epoch,
      unread: r.unread, online: r.online, active: r === rooms.activeRoom(),
    }));
  },
  get queued() { return queue.length; },
  get readyState() { return socket ? socket.readyState : -1; },
  sendUnchecked(text) { if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "message", text })); },
  drop() { socket?.close(4000, "dropped by a test"); },
});

// ---- strings ---------------------------------------------------------------

function applyLanguage() {
  document.documentElement.lang = getLang();
  el.lang.value = getLang();
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  el.queue.setAttribute("aria-label", t("queueLabel"));
  el.rooms.setAttribute("aria-label", t("rooms"));
  el.joinRoom.placeholder = t("addRoom");
  document.title = t("title");
  renderStatus();
  renderQueue();
  renderIdentity();
  rooms.renderAll();
  renderJoinError();
  updateCounter();
}

// ---- status, notes, errors ---------------------------------------------------

function setStatus(state, key, ...args) {
  status = { state, key, args };
  renderStatus();
}

function renderStatus() {
  const { state, key, args } = status;
  el.status.dataset.state = state;
  el.status.textContent = key === "retryIn" ? t("retryIn", t(args[0], args[1]), args[2]) : t(key, ...args);
}

// The inline alerts (under the message input; under the room list);
// data-code names the cause for tests.
function showError(text, code) { el.error.textContent = text; el.error.dataset.code = code; }
function clearError() { el.error.textContent = ""; el.error.dataset.code = ""; }
// The room list's alert is always one of the page's strings: kept as a key,
// so that it follows a language switch.
let joinError = null; // { code, key, args }: an arg { key } is a string too
function showJoinError(code, key, ...args) { joinError = { code, key, args }; renderJoinError(); }
function clearJoinError() { joinError = null; renderJoinError(); }
function renderJoinError() {
  const args = joinError?.args.map((a) => (typeof a === "object" ? t(a.key) : a)) ?? [];
  el.joinError.textContent = joinError ? t(joinError.key, ...args) : "";
  el.joinError.dataset.code = joinError?.code ?? "";
}

// ---- server events -----------------------------------------------------------

/** The room an event is about: its `room`, else the query string's; null when not held. */
function roomFor(name) {
  return rooms.find(typeof name === "string" ? name : connRoom);
}

function onEvent(data) {
  switch (data?.type) {
    case "message": {
      const room = roomFor(data.message?.room);
      if (room) rooms.acceptMessage(room, data.message);
      break;
    }
    case "history": {
      const room = roomFor(data.room);
      if (!room) break; // left while its join was on the way
      rooms.acceptHistory(room, data);
      hook.histories += 1;
      break;
    }
    case "system":
      rooms.logAll(String(data.message ?? ""));
      if (/^connected as /.test(data.message ?? "")) setStatus("online", "onlineAs", data.message.slice(13));
      onSystem(data);
      break;
    case "expiring": onExpiring(data); break;
    case "refreshed": onRefreshed(data); break;
    case "presence": {
      const room = roomFor(data.room);
      if (!room) break;
      if (Number.isInteger(data.online)) rooms.setOnline(room, data.online);
      if (data.message) rooms.logLine(room, String(data.message), "presence");
      break;
    }
    case "deleted": {
      const room = roomFor(data.room);
      if (room && typeof data.id === "string") rooms.removeMessage(room, data.id);
      break;
    }
    case "members": {
      const room = roomFor(data.room);
      if (room) rooms.showMembers(room, data);
      break;
    }
    case "left": onLeft(data); break;
    case "error": onError(data); break;
    default: break;
  }
}

function goneReason(code) { return has(`gone_${code}`) ? code : "not_joined"; }

// `left`: asked for (the room is already off the page), or the room was
// taken away; the connection stays open either way.
function onLeft(data) {
  const room = rooms.find(data.room);
  if (!room) return;
  if (data.reason === "leave") { rooms.removeRoom(room); return; }
  rooms.markGone(room, goneReason(String(data.reason ?? "")));
  dropQueued(room);
}

function onError(data) {
  const code = String(data.code ?? "");
  if (code === "bad_token") { onRefreshRefused(); return; }
  const named = typeof data.room === "string";
  const room = named ? rooms.find(data.room) : null;
  if (named && !room) return; // about a room the page has left
  if (room && room.state === "joining" && room !== rooms.home() && JOIN_REFUSALS.has(code)) { joinRefused(room, code); return; }
  const text = has(`err_${code}`) ? t(`err_${code}`) : String(data.message ?? (code || "error"));
  const where = room ?? rooms.activeRoom();
  if (where) rooms.logLine(where, text, "error");
  if (room && code === "not_joined") { rooms.markGone(room, "not_joined"); dropQueued(room); }
  // By the input when it is about what the user sees (or about no room).
  if (!room || room === rooms.activeRoom()) showError(text, code);
}

// A join refused: a room never joined goes away (the alert by the room list
// says why); one held before this connection stays, marked, with the reason.
function joinRefused(room, code) {
  if (code === "already_joined") { rooms.markJoined(room); return; }
  if (!room.everJoined) {
    rooms.removeRoom(room);
    showJoinError(code, "joinRefused", room.name, { key: `why_${code}` });
    rememberRooms();
  } else {
    rooms.markGone(room, goneReason(code));
  }
  dropQueued(room);
}

/** Queued messages to a room the page no longer holds will not be sent. */
function dropQueued(room) {
  let dropped = 0;
  for (let i = queue.length - 1; i >= 0; i -= 1) {
    if (queue[i].room === room.name) { queue.splice(i, 1); dropped += 1; }
  }
  if (dropped > 0) {
    if (rooms.find(room.name)) rooms.logLine(room, t("notSent", dropped), "error");
    renderQueue();
  }
}

// ---- identity and session expiry (PROTOCOL §8) -----------------------------

function validTime(v) { return typeof v === "string" && !Number.isNaN(Date.parse(v)) ? v : null; }

function fmtTime(iso) {
  return new Date(iso).toLocaleTimeString(getLang(), { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function onSystem(data) {
  const user = typeof data.user === "string" && data.user ? data.user : null;
  if (!user) { endIdentity(); return; } // a guest: the name stays the user's own
  const name = typeof data.name === "string" && data.name ? data.name : user;
  identity = { user, name, expiresAt: validTime(data.expiresAt) };
  rooms.setSelf({ user, moderator: tokenMayModerate(el.token.value) });
  pendingToken = null;
  sessionNote = null;
  lockName(name);
  renderIdentity();
}

function endIdentity() {
  identity = null;
  rooms.setSelf({ user: null, moderator: false });
  pendingToken = null;
  sessionNote = null;
  unlockName();
  renderIdentity();
}

// The token's name wins over the name field (the server ignores ?name= for
// an identified user): show it, read-only, and give the typed one back later.
// Whether a JWT's `perm` claim has `moderate` (only to offer delete buttons
// on every message; the server decides). Static tokens: no.
function tokenMayModerate(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) return false;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    const perm = JSON.parse(json).perm;
    return Array.isArray(perm) && perm.includes("moderate");
  } catch (_) {
    return false;
  }
}

function lockName(name) {
  if (ownName === null) ownName = el.name.value;
  el.name.value = name;
  el.name.readOnly = true;
  el.name.setAttribute("aria-describedby", "name-hint");
  el.nameHint.hidden = false;
  connectedWith = paramsKey();
}

function unlockName() {
  if (ownName === null) return;
  el.name.value = ownName;
  ownName = null;
  el.name.readOnly = false;
  el.name.removeAttribute("aria-describedby");
  el.nameHint.hidden = true;
}

function setSessionNote(key, at) {
  sessionNote = key ? { key, at } : null;
  renderIdentity();
}

function renderIdentity() {
  el.identity.hidden = !identity;
  if (!identity) return;
  el.whoami.textContent = t("signedInAs", identity.name, identity.user);
  el.sessionEnd.hidden = !identity.expiresAt;
  if (identity.expiresAt) {
    el.expires.dateTime = identity.expiresAt;
    el.expires.textContent = fmtTime(identity.expiresAt);
  }
  const note = sessionNote;
  el.sessionNote.dataset.kind = note ? note.key : "";
  el.sessionNote.textContent = note ? t(note.key, note.at ? fmtTime(note.at) : "") : "";
}

// The server warns `auth.expiry_warning` before the token's exp. With a token
// URL, fetch a fresh token and refresh in place; without one, say when it ends.
async function onExpiring(data) {
  if (!identity) return;
  identity.expiresAt = validTime(data.expiresAt) ?? identity.expiresAt;
  renderIdentity();
  if (refreshing) return;
  const ws = socket;
  refreshing = true;
  await loadPageConfig(); // the setting reloads: ask each time
  if (!tokenUrl) {
    refreshing = false;
    if (socket === ws && identity) setSessionNote("expiringNoUrl", identity.expiresAt);
    return;
  }
  setSessionNote("renewing");
  const token = await fetchToken();
  refreshing = false;
  if (socket !== ws || !identity) return; // closed or replaced meanwhile
  if (!token || ws.readyState !== WebSocket.OPEN) { setSessionNote("renewFailed", identity.expiresAt); return; }
  pendingToken = token;
  ws.send(JSON.stringify({ type: "refresh", token }));
}

function onRefreshed(data) {
  if (pendingToken) adoptToken(pendingToken);
  pendingToken = null;
  if (!identity) return;
  identity.expiresAt = validTime(data.expiresAt) ?? identity.expiresAt;
  hook.refreshes += 1;
  setSessionNote(null);
  if (identity.expiresAt) rooms.logAll(t("renewed", fmtTime(identity.expiresAt)));
}

function onRefreshRefused() {
  pendingToken = null;
  if (identity) setSessionNote("renewFailed", identity.expiresAt);
  rooms.logAll(t("err_bad_token"), "error");
}

// A fresh token replaces the field's, for reconnects; it is stored only when
// the user asked to remember the token.
function adoptToken(token) {
  el.token.value = token;
  if (el.remember.checked) store.set("token", token);
  connectedWith = paramsKey();
}

// GET the token URL with the page's cookies: {"token":"<jwt>"}, or null.
async function fetchToken() {
  if (!tokenUrl) return null;
  try {
    const res = await fetch(tokenUrl, { credentials: "same-origin", cache: "no-store", headers: { accept: "application/json" } });
    if (!res.ok) return null;
    const body = await res.json();
    return typeof body?.token === "string" && body.token ? body.token : null;
  } catch {
    return null;
  }
}

// /page-config.json: the token URL (same-origin paths only, as the server
// checks too). A 404 is a server without it (the reference), which takes the
// token only as ?token=. A failed fetch changes nothing.
async function loadPageConfig() {
  try {
    const res = await fetch("/page-config.json", { cache: "no-store", signal: AbortSignal.timeout(5_000) });
    if (res.status === 404) { legacyServer = true; tokenUrl = null; return; }
    if (!res.ok) return;
    const cfg = await res.json();
    legacyServer = false;
    tokenUrl = typeof cfg?.tokenUrl === "string" && /^\/(?![/\\])/.test(cfg.tokenUrl) ? cfg.tokenUrl : null;
  } catch {
    /* server down, or not JSON: keep what we had */
  }
}

// Closed with 4001 (the token expired without a refresh). With a token URL,
// reconnect once with a fresh token (at most once a minute, so a token URL
// handing out stale tokens cannot make a loop); otherwise stop and say so.
async function onExpired() {
  rooms.logAll(t("expired"), "error");
  if (Date.now() - lastExpiryRenewal >= EXPIRY_RENEW_GAP_MS) {
    await loadPageConfig();
    if (tokenUrl && wanted && !socket) {
      setStatus("connecting", "expiredRenewing");
      const token = await fetchToken();
      if (token && wanted && !socket) {
        lastExpiryRenewal = Date.now();
        renewingAfterExpiry = true;
        adoptToken(token);
        attempt = 0;
        open();
        return;
      }
    }
  }
  if (!wanted || socket) return; // the user acted meanwhile
  stopWith("expired");
}

// No reconnect: say why, and give the name field back.
function stopWith(key) {
  wanted = false;
  renewingAfterExpiry = false;
  endIdentity();
  setStatus("error", key);
}


// ---- connection ------------------------------------------------------------

function socketUrl(params) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/chat?${params}`;
}

function open() {
  clearTimeout(retryTimer);
  hook.nextAttemptAt = 0;
  const home = rooms.setHome(el.room.value.trim() || "lobby");
  connRoom = home.name;
  // The token as a subprotocol keeps it out of the URL (and proxies' access
  // logs); only a token that cannot be one, or a server without it, uses ?token=.
  const token = el.token.value;
  const asProtocol = !legacyServer && PROTOCOL_SAFE.test(token);
  const params = new URLSearchParams(asProtocol ? {} : { token });
  params.set("name", el.name.value.trim());
  params.set("room", home.name);
  // The home room resumes through the query string, every other room with a
  // `join` of its own once the socket is open (PROTOCOL §9).
  const { since, epoch } = rooms.resumeFrom(home);
  if (since !== undefined) params.set("since", String(since));
  if (epoch !== undefined) params.set("epoch", epoch);
  for (const room of rooms.all()) rooms.markJoining(room);
  pendingJoins = legacyServer ? [] : rooms.all().slice(1).filter((r) => r.state !== "gone").map((r) => r.name);
  const shown = new URLSearchParams(params);
  shown.delete("token");
  hook.lastUrlParams = shown.toString();
  hook.attempts += 1;
  hook.tokenIn = asProtocol ? "subprotocol" : "query";
  attemptsSinceConnect += 1;
  setStatus("connecting", "connecting");
  const ws = asProtocol ? new WebSocket(socketUrl(params), [SUBPROTOCOL, TOKEN_PROTOCOL + token])
    : new WebSocket(socketUrl(params));
  socket = ws;
  let openedAt = 0;
  ws.addEventListener("open", () => {
    if (socket !== ws) return;
    openedAt = Date.now();
    everOpened = true;
    renewingAfterExpiry = false;
    budget.tokens = SEND_BURST;
    budget.at = openedAt;
    setStatus("online", "onlineAs", el.name.value.trim() || "guest");
    flush();
  });
  ws.addEventListener("message", (ev) => {
    if (socket !== ws) return;
    let data;
    try { data = JSON.parse(ev.data); } catch { return; }
    onEvent(data);
  });
  ws.addEventListener("close", (ev) => {
    if (socket !== ws) return;
    socket = null;
    pendingJoins = [];
    clearTimeout(flushTimer);
    rooms.clearOnline();
    onClose(ev.code, openedAt);
  });
}

async function onClose(code, openedAt) {
  if (!wanted) { endIdentity(); setStatus("offline", "disconnected"); return; }
  if (code === 1008) { stopWith("revoked"); return; }
  if (code === 4003) { stopWith("kicked"); return; }
  if (code === 4001) { onExpired(); return; }
  // The fresh token after a 4001 was refused too: do not retry it.
  if (!openedAt && renewingAfterExpiry) { stopWith("expired"); return; }
  if (!openedAt) {
    // Closed before open: the browser hides the HTTP status. On the first
    // attempt, a live server means the upgrade itself was refused.
    if (!everOpened && attemptsSinceConnect === 1 && await serverIsUp()) {
      if (!wanted || socket) return; // the user acted meanwhile
      stopWith("rejected");
      return;
    }
    if (!wanted || socket) return;
    return scheduleRetry("unreachable");
  }
  if (Date.now() - openedAt >= STABLE_MS) attempt = 0;
  const [why, arg] = code === 1001 ? ["goingAway"] : code === 1013 ? ["busy"] : ["lost", code];
  rooms.logAll(t(why, arg), "error");
  return scheduleRetry(why, arg);
}

async function serverIsUp() {
  try {
    const res = await fetch("/healthz", { cache: "no-store" });
    return res.ok;
  } catch {
    return false;
  }
}

function scheduleRetry(why, arg) {
  const cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  const delay = Math.floor(Math.random() * cap); // full jitter
  hook.delays.push({ attempt, cap, delay, why });
  if (hook.delays.length > 100) hook.delays.shift();
  attempt += 1;
  hook.nextAttemptAt = Date.now() + delay;
  setStatus("waiting", "retryIn", why, arg, (delay / 1000).toFixed(1));
  retryTimer = setTimeout(open, delay);
}

function connect() {
  if (socket && connectedWith === paramsKey()) return; // already connecting or open
  closeQuietly();
  endIdentity(); // a new connect: the name field is the user's until a token names them
  renewingAfterExpiry = false;
  wanted = true;
  attempt = 0;
  everOpened = false;
  attemptsSinceConnect = 0;
  connectedWith = paramsKey();
  rememberFields();
  open();
  rememberRooms(); // the Room field may have made an extra room the first
}

function paramsKey() { return `${el.room.value.trim()}\n${el.name.value.trim()}\n${el.token.value}`; }

function disconnect() {
  wanted = false;
  clearTimeout(retryTimer);
  hook.nextAttemptAt = 0;
  if (socket) socket.close(1000, "user disconnected");
  else { endIdentity(); setStatus("offline", "disconnected"); }
}

function closeQuietly() {
  clearTimeout(retryTimer);
  pendingJoins = [];
  if (!socket) return;
  const old = socket;
  socket = null;
  rooms.clearOnline();
  old.close(1000, "reconnecting");
}

// ---- rooms: join from the form, leave from the list --------------------------

function submitJoin(ev) {
  ev.preventDefault();
  clearJoinError();
  const name = el.joinRoom.value.trim();
  if (!rooms.ROOM_NAME.test(name)) { showJoinError("bad_room_local", "badRoomName"); return; }
  if (!rooms.home()) rooms.setHome(el.room.value.trim() || "lobby");
  const held = rooms.find(name);
  el.joinRoom.value = "";
  if (held && held.state !== "gone") { rooms.setActive(held, true); return; }
  if (!held && rooms.all().length >= rooms.MAX_ROOMS) {
    el.joinRoom.value = name;
    showJoinError("too_many_rooms_local", "tooManyRooms", rooms.MAX_ROOMS);
    return;
  }
  const room = rooms.addRoom(name);
  rememberRooms();
  if (socket?.readyState === WebSocket.OPEN) { pendingJoins.push(room.name); flush(); }
  // Not connected: the join goes out with the others when the socket opens.
  else if (socket) pendingJoins.push(room.name);
}

// The room is off the page already (rooms.js); tell the server, unless it
// never held it or does not any more.
function onUserLeft(room) {
  const joinSent = !pendingJoins.includes(room.name);
  pendingJoins = pendingJoins.filter((n) => n !== room.name);
  dropQueued(room);
  rememberRooms();
  if (joinSent && room.state !== "gone" && socket?.readyState === WebSocket.OPEN) send({ type: "leave", room: room.name });
}

function onSwitched(room) {
  clearError();
  el.members.hidden = true; // it was about the room shown before
  renderQueue();
  if (room) store.set("active", room.name);
}

// ---- sending and the offline queue -----------------------------------------

function canSend() {
  return socket?.readyState === WebSocket.OPEN && socket.bufferedAmount < BUFFER_LIMIT;
}

/** Takes one send from the budget; false when it is spent (wait, then try again). */
function takeBudget(force = false) {
  const now = Date.now();
  budget.tokens = Math.min(SEND_BURST, budget.tokens + (now - budget.at) / SEND_EVERY_MS);
  budget.at = now;
  if (budget.tokens < 1 && !force) return false;
  budget.tokens = Math.max(0, budget.tokens - 1);
  return true;
}

function send(event) { takeBudget(true); socket.send(JSON.stringify(event)); }

/** A delete button: ask the server to delete message `id` of `room`. */
function sendDelete(room, id) {
  if (socket?.readyState === WebSocket.OPEN) send({ type: "delete", room: room.name, id });
}

/** "Who is here": ask for the shown room's members (answered by `members`). */
function askWho() {
  const room = rooms.activeRoom();
  if (room && socket?.readyState === WebSocket.OPEN && !legacyServer) send({ type: "who", room: room.name });
}

function messageEvent(room, text) {
  // The reference server knows one room per connection and no `room` field.
  return legacyServer ? { type: "message", text } : { type: "message", room, text };
}

function flush() {
  clearTimeout(flushTimer);
  let waitForBudget = false;
  while ((pendingJoins.length > 0 || queue.length > 0) && canSend()) {
    if (!takeBudget()) { waitForBudget = true; break; }
    if (pendingJoins.length > 0) {
      const room = rooms.find(pendingJoins.shift());
      if (room && room.state !== "gone") socket.send(JSON.stringify({ type: "join", room: room.name, ...rooms.resumeFrom(room) }));
      continue;
    }
    const { room, text } = queue.shift();
    socket.send(JSON.stringify(messageEvent(room, text)));
  }
  renderQueue();
  // Still something to send and the socket is open: wait for the buffer to
  // drain, or for the budget to allow one more.
  if ((pendingJoins.length > 0 || queue.length > 0) && socket?.readyState === WebSocket.OPEN) {
    flushTimer = setTimeout(flush, waitForBudget ? SEND_EVERY_MS : 100);
  }
}

function renderQueue() {
  const several = rooms.all().length > 1;
  el.queue.replaceChildren(...queue.map(({ room, text }) => {
    const li = document.createElement("li");
    li.dataset.room = room;
    if (several) {
      const where = document.createElement("span");
      where.className = "queue-room";
      where.textContent = room;
      li.append(where, " ");
    }
    li.append(text);
    return li;
  }));
  el.queue.hidden = queue.length === 0;
  el.note.textContent = queue.length > 0 ? t("queued", queue.length, QUEUE_MAX) : "";
}

function chars(text) { return [...text].length; }

function updateCounter() {
  const n = chars(el.message.value.trim());
  el.counter.textContent = `${n}/${MAX_CHARS}`;
  el.counter.classList.toggle("over", n > MAX_CHARS);
  el.message.setAttribute("aria-invalid", String(n > MAX_CHARS));
}

function submitMessage(ev) {
  ev.preventDefault();
  const text = el.message.value.trim();
  clearError();
  if (!text) { showError(t("empty"), "empty_local"); return; }
  if (chars(text) > MAX_CHARS) { showError(t("tooLong", MAX_CHARS), "too_long_local"); return; }
  const room = rooms.activeRoom() ?? rooms.setHome(el.room.value.trim() || "lobby");
  if (room.state === "gone") { showError(t("notInRoom"), "not_in_room_local"); return; }
  if (queue.length === 0 && pendingJoins.length === 0 && canSend()) {
    send(messageEvent(room.name, text));
  } else {
    if (queue.length >= QUEUE_MAX) { showError(t("queueFull", QUEUE_MAX), "queue_full"); return; }
    queue.push({ room: room.name, text });
    flush();
  }
  el.message.value = "";
  updateCounter();
}

// ---- remembered fields (the token only with consent) -----------------------

function rememberFields() {
  store.set("room", el.room.value.trim());
  store.set("name", el.name.value.trim());
  if (el.remember.checked) store.set("token", el.token.value);
}

/** The rooms beyond the first, to join again after a reload. */
function rememberRooms() {
  store.set("rooms", JSON.stringify(rooms.all().slice(1).map((r) => r.name)));
}

function restoreFields() {
  el.room.value = store.get("room") || el.room.value;
  el.name.value = store.get("name") || el.name.value;
  const token = store.get("token");
  if (token !== null) { el.token.value = token; el.remember.checked = true; }
}

function restoreRooms() {
  let extra = [];
  try { extra = JSON.parse(store.get("rooms") ?? "[]"); } catch { /* not ours: ignore */ }
  if (!Array.isArray(extra) || extra.length === 0) return;
  rooms.setHome(el.room.value.trim() || "lobby");
  for (const name of extra.slice(0, rooms.MAX_ROOMS - 1)) {
    if (typeof name === "string" && rooms.ROOM_NAME.test(name) && !rooms.find(name)) rooms.addRoom(name);
  }
  const active = rooms.find(store.get("active"));
  rooms.setActive(active ?? rooms.home(), false);
}

// ---- wiring ----------------------------------------------------------------

rooms.initRooms({
  list: el.rooms, log: el.log, title: el.logTitle, online: el.online, message: el.message,
  members: el.members, membersTitle: el.membersTitle, membersList: el.membersList, membersNote: el.membersNote,
}, { leave: onUserLeft, switched: onSwitched, deleteMessage: sendDelete });
el.who.addEventListener("click", askWho);
el.conn.addEventListener("submit", (ev) => { ev.preventDefault(); connect(); });
el.disconnect.addEventListener("click", disconnect);
el.form.addEventListener("submit", submitMessage);
el.joinForm.addEventListener("submit", submitJoin);
el.joinRoom.addEventListener("input", () => { if (el.joinError.textContent) clearJoinError(); });
el.message.addEventListener("input", () => { updateCounter(); if (el.error.textContent) clearError(); });
el.remember.addEventListener("change", () => {
  if (el.remember.checked) store.set("token", el.token.value);
  else store.del("token");
});
el.token.addEventListener("change", () => { if (el.remember.checked) store.set("token", el.token.value); });
el.lang.addEventListener("change", () => {
  store.set("lang", setLang(el.lang.value));
  applyLanguage();
});
window.addEventListener("online", () => { if (wanted && !socket) { attempt = 0; open(); } });

restoreFields();
restoreRooms();
applyLanguage();
// Like the reference page, connect on load, but only with a remembered token,
// and once the page knows whether the server takes the token as a subprotocol.
if (!el.token.value) el.token.focus();
loadPageConfig().finally(() => {
  el.roomsBar.hidden = legacyServer; // the reference holds one room per connection
  if (el.token.value && !wanted) connect();
});
