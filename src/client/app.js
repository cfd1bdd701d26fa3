// app.js — the ws-chat browser page: UI strings (English, Korean), the
// connection life (connect with the token as a subprotocol, reconnect with
// capped full-jitter backoff, rejection detection), identified users (the
// name from the token, session expiry and refresh from a token URL), resume
// with since/epoch and duplicate dropping, the bounded offline queue, and
// rendering (always as text, never as HTML).
// Wire contract: docs/protocol.md. No framework, no build step, no inline code:
// the server's CSP allows only this file.
"use strict";

const STRINGS = {
  en: {
    title: "ws-chat", language: "Language", skipToMessage: "Skip to message",
    room: "Room", roomHint: "Letters, digits, - and _", name: "Name", token: "Token",
    remember: "Remember token on this device", connect: "Connect", disconnect: "Disconnect",
    messages: "Messages", message: "Message", send: "Send", queueLabel: "Queued messages",
    offline: "Offline", connecting: "Connecting…", onlineAs: (n) => `Connected as ${n}`,
    disconnected: "Disconnected",
    retryIn: (why, s) => `${why} Reconnecting in ${s} s…`,
    lost: (c) => `Connection lost (${c}).`, goingAway: "Server is restarting (1001).",
    busy: "Server is busy (1013).", unreachable: "Server unreachable.",
    rejected: "Rejected: check token, room or origin.",
    revoked: "Closed by the server: token revoked or not allowed (1008).",
    online: (n) => `${n} online`, queued: (n, max) => `${n} of ${max} queued: sent when connected.`,
    queueFull: (max) => `Queue full (${max} messages). Wait for the connection.`,
    tooLong: (max) => `Too long: at most ${max} characters.`, empty: "Type a message first.",
    loaded: (n) => `Loaded ${n} earlier message${n === 1 ? "" : "s"}.`,
    historyReset: "History reset: the server lost earlier messages.",
    resumed: (n) => `Reconnected: ${n} missed message${n === 1 ? "" : "s"}.`,
    err_rate_limited: "Too many messages: wait a few seconds.",
    err_too_large: "Message too long (500 characters at most).",
    err_empty: "Message is empty.", err_forbidden: "This token may only read here.",
    err_unavailable: "Chat is unavailable right now: try again soon.",
    err_bad_json: "The server could not read that message.",
    err_bad_type: "The server did not accept that event.",
    err_bad_token: "The server refused the new token.",
    nameFromToken: "Name from your token",
    signedInAs: (name, user) => `Signed in as ${name} (user ${user})`,
    sessionUntil: "Session valid until",
    identified: (user) => `identified user ${user}`,
    expiringNoUrl: (at) => `Your session ends at ${at}. Get a new token and connect again to continue.`,
    renewing: "Your session ends soon: renewing it…",
    renewed: (at) => `Session renewed until ${at}.`,
    renewFailed: (at) => `Could not renew your session: it ends soon (${at}).`,
    expired: "Session expired (4001): get a new token (log in again) and connect.",
    expiredRenewing: "Session expired (4001): reconnecting with a new token…",
    kicked: "Disconnected by a moderator (4003).",
  },
  ko: {
    title: "ws-chat", language: "언어", skipToMessage: "메시지 입력으로 건너뛰기",
    room: "방", roomHint: "영문, 숫자, - 와 _", name: "이름", token: "토큰",
    remember: "이 기기에 토큰 기억", connect: "연결", disconnect: "끊기",
    messages: "메시지", message: "메시지", send: "보내기", queueLabel: "대기 중인 메시지",
    offline: "오프라인", connecting: "연결 중…", onlineAs: (n) => `${n}(으)로 연결됨`,
    disconnected: "연결 끊김",
    retryIn: (why, s) => `${why} ${s}초 후 다시 연결합니다…`,
    lost: (c) => `연결이 끊어졌습니다 (${c}).`, goingAway: "서버가 다시 시작하는 중입니다 (1001).",
    busy: "서버가 혼잡합니다 (1013).", unreachable: "서버에 연결할 수 없습니다.",
    rejected: "거부됨: 토큰, 방 또는 출처(origin)를 확인하세요.",
    revoked: "서버가 연결을 닫았습니다: 토큰이 취소되었거나 허용되지 않습니다 (1008).",
    online: (n) => `${n}명 접속 중`, queued: (n, max) => `${n}/${max}개 대기 중: 연결되면 보냅니다.`,
    queueFull: (max) => `대기열이 가득 찼습니다 (${max}개). 연결될 때까지 기다리세요.`,
    tooLong: (max) => `너무 깁니다: 최대 ${max}자입니다.`, empty: "먼저 메시지를 입력하세요.",
    loaded: (n) => `이전 메시지 ${n}개를 불러왔습니다.`,
    historyReset: "기록 초기화: 서버가 이전 메시지를 잃었습니다.",
    resumed: (n) => `다시 연결됨: 놓친 메시지 ${n}개.`,
    err_rate_limited: "메시지가 너무 많습니다: 잠시 기다리세요.",
    err_too_large: "메시지가 너무 깁니다 (최대 500자).",
    err_empty: "메시지가 비어 있습니다.", err_forbidden: "이 토큰은 여기서 읽기만 할 수 있습니다.",
    err_unavailable: "지금은 채팅을 사용할 수 없습니다: 잠시 후 다시 시도하세요.",
    err_bad_json: "서버가 메시지를 읽지 못했습니다.",
    err_bad_type: "서버가 이 이벤트를 받지 않았습니다.",
    err_bad_token: "서버가 새 토큰을 받지 않았습니다.",
    nameFromToken: "토큰에 있는 이름",
    signedInAs: (name, user) => `${name}(으)로 로그인됨 (사용자 ${user})`,
    sessionUntil: "세션 유효 시간:",
    identified: (user) => `인증된 사용자 ${user}`,
    expiringNoUrl: (at) => `세션이 ${at}에 끝납니다. 계속하려면 새 토큰을 받아 다시 연결하세요.`,
    renewing: "세션이 곧 끝납니다: 갱신하는 중…",
    renewed: (at) => `세션이 ${at}까지 갱신되었습니다.`,
    renewFailed: (at) => `세션을 갱신하지 못했습니다: 곧 끝납니다 (${at}).`,
    expired: "세션이 만료되었습니다 (4001): 새 토큰을 받거나 다시 로그인한 뒤 연결하세요.",
    expiredRenewing: "세션이 만료되었습니다 (4001): 새 토큰으로 다시 연결하는 중…",
    kicked: "운영자가 연결을 끊었습니다 (4003).",
  },
};

const MAX_CHARS = 500;          // PROTOCOL §3, in Unicode scalar values after trimming
const QUEUE_MAX = 20;           // offline queue bound
const BUFFER_LIMIT = 64 * 1024; // flush only while bufferedAmount is under this
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;
const STABLE_MS = 5_000;        // a connection open this long resets the backoff
const SEEN_MAX = 2_000;         // message ids remembered for dropping duplicates
const LOG_MAX = 1_000;          // log lines kept on screen
const SUBPROTOCOL = "ws-chat.v2";            // PROTOCOL §7
const TOKEN_PROTOCOL = "ws-chat.token.";
// A subprotocol must be an RFC 2616 token (RFC 6455 §4.1); a JWT always is.
// A static token with other characters goes in ?token= instead.
const PROTOCOL_SAFE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const EXPIRY_RENEW_GAP_MS = 60_000; // at most one reconnect after 4001 per minute

const $ = (sel) => document.querySelector(sel);
const el = {
  status: $("#status"), online: $("#online"), lang: $("#lang"), conn: $("#connection"),
  room: $("#room"), name: $("#name"), token: $("#token"), remember: $("#remember"),
  disconnect: $("#disconnect"), log: $("#log"), queue: $("#queue"), form: $("#form"),
  message: $("#message"), error: $("#form-error"), note: $("#form-note"), counter: $("#counter"),
  nameHint: $("#name-hint"), identity: $("#identity"), whoami: $("#whoami"),
  sessionEnd: $("#session-end"), expires: $("#expires"), sessionNote: $("#session-note"),
};

const store = {
  get: (k) => { try { return localStorage.getItem(`wschat.${k}`); } catch { return null; } },
  set: (k, v) => { try { localStorage.setItem(`wschat.${k}`, v); } catch { /* private mode */ } },
  del: (k) => { try { localStorage.removeItem(`wschat.${k}`); } catch { /* private mode */ } },
};

let lang = pickLanguage();
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

// What /page-config.json said: where to fetch a fresh token (null: nowhere),
// and whether the server is one without it (the reference: a 404), which
// takes the token only in the query string.
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

// Resume state, per room (PROTOCOL §1–§2).
let stateRoom = null;
let lastSeq = null;
let epoch = null;
let sentEpoch = null;
let historySeen = false; // a history was already shown for this room
const seen = new Set();
const queue = [];

// Test hook: read-only observations plus a send that skips the client-side
// checks (the server must enforce them anyway). Nothing here reveals the token.
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
  get resume() { return { lastSeq, epoch, room: stateRoom, params: hook.lastUrlParams }; },
  get queued() { return queue.length; },
  get readyState() { return socket ? socket.readyState : -1; },
  sendUnchecked(text) { if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "message", text })); },
});

// ---- strings ---------------------------------------------------------------

function pickLanguage() {
  const saved = store.get("lang");
  if (saved && STRINGS[saved]) return saved;
  return String(navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en";
}

function t(key, ...args) {
  const v = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return typeof v === "function" ? v(...args) : v;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  el.lang.value = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  el.queue.setAttribute("aria-label", t("queueLabel"));
  document.title = t("title");
  renderStatus();
  renderQueue();
  renderIdentity();
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

// The inline alert under the input; data-code names the cause for tests.
function showError(text, code) { el.error.textContent = text; el.error.dataset.code = code; }
function clearError() { el.error.textContent = ""; el.error.dataset.code = ""; }

// ---- the log: text only, never HTML ----------------------------------------

function logLine(text, kind = "system") {
  const line = document.createElement("p");
  line.className = `line ${kind}`;
  line.textContent = text;
  appendToLog(line);
  return line;
}

function logMessage(m) {
  const line = document.createElement("p");
  line.className = "line message";
  if (m.id) line.dataset.id = m.id;
  const time = document.createElement("time");
  const when = new Date(m.sentAt);
  if (!Number.isNaN(when.getTime())) {
    time.dateTime = m.sentAt;
    time.textContent = when.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
  }
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = String(m.from ?? "?");
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = String(m.text ?? "");
  line.append(time, from);
  // An identified sender (PROTOCOL §8) gets a mark a guest cannot take by
  // choosing the same name; guests' messages look as they always did.
  if (typeof m.user === "string" && m.user) {
    line.dataset.user = m.user;
    line.append(identifiedBadge(m.user));
  }
  line.append(text);
  appendToLog(line);
}

function identifiedBadge(user) {
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.title = t("identified", user);
  const mark = document.createElement("span");
  mark.setAttribute("aria-hidden", "true");
  mark.textContent = "✓";
  const label = document.createElement("span");
  label.className = "visually-hidden";
  label.textContent = t("identified", user);
  badge.append(mark, label);
  return badge;
}

function logDivider(text) {
  const line = logLine(text, "divider");
  line.setAttribute("role", "separator");
}

function appendToLog(node) {
  const atBottom = el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 40;
  el.log.append(node);
  while (el.log.childElementCount > LOG_MAX) el.log.firstElementChild.remove();
  if (atBottom) el.log.scrollTop = el.log.scrollHeight;
}

// ---- messages and resume ---------------------------------------------------

function resetResume(room) {
  stateRoom = room;
  lastSeq = null;
  epoch = null;
  historySeen = false;
  seen.clear();
}

// Returns true when the message is new and was rendered.
function acceptMessage(m) {
  if (!m || typeof m !== "object") return false;
  if (m.id && seen.has(m.id)) return false;
  if (Number.isInteger(m.seq) && lastSeq !== null && m.seq <= lastSeq) return false;
  if (m.id) {
    seen.add(m.id);
    if (seen.size > SEEN_MAX) seen.delete(seen.values().next().value);
  }
  if (Number.isInteger(m.seq)) lastSeq = lastSeq === null ? m.seq : Math.max(lastSeq, m.seq);
  logMessage(m);
  return true;
}

function onHistory(data) {
  const messages = Array.isArray(data.messages) ? data.messages : [];
  const newEpoch = typeof data.epoch === "string" ? data.epoch : null;
  if (sentEpoch !== null && newEpoch !== null && newEpoch !== sentEpoch) {
    // The server lost this room's history (restart, flush): seq starts again.
    // What is on screen stays above the divider; the new history goes below,
    // minus any message whose id is already on screen.
    lastSeq = null;
    seen.clear();
    for (const line of el.log.querySelectorAll(".line.message[data-id]")) seen.add(line.dataset.id);
    logDivider(t("historyReset"));
  }
  if (newEpoch !== null) epoch = newEpoch;
  let shown = 0;
  for (const m of messages) if (acceptMessage(m)) shown += 1;
  hook.histories += 1;
  if (!historySeen) logLine(t("loaded", shown));
  else if (shown > 0) logLine(t("resumed", shown));
  historySeen = true;
}

function onEvent(data) {
  switch (data?.type) {
    case "message": acceptMessage(data.message); break;
    case "history": onHistory(data); break;
    case "system":
      logLine(String(data.message ?? ""));
      if (/^connected as /.test(data.message ?? "")) setStatus("online", "onlineAs", data.message.slice(13));
      onSystem(data);
      break;
    case "expiring": onExpiring(data); break;
    case "refreshed": onRefreshed(data); break;
    case "presence":
      if (Number.isInteger(data.online)) { el.online.hidden = false; el.online.dataset.count = data.online; el.online.textContent = t("online", data.online); }
      if (data.message) logLine(String(data.message), "presence");
      break;
    case "error": {
      if (data.code === "bad_token") { onRefreshRefused(); break; }
      const text = STRINGS[lang][`err_${data.code}`] ? t(`err_${data.code}`) : String(data.message ?? data.code ?? "error");
      showError(text, String(data.code ?? ""));
      logLine(text, "error");
      break;
    }
    default: break;
  }
}

// ---- identity and session expiry (PROTOCOL §8) -----------------------------

function validTime(v) { return typeof v === "string" && !Number.isNaN(Date.parse(v)) ? v : null; }

function fmtTime(iso) {
  return new Date(iso).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function onSystem(data) {
  const user = typeof data.user === "string" && data.user ? data.user : null;
  if (!user) { endIdentity(); return; } // a guest: the name stays the user's own
  const name = typeof data.name === "string" && data.name ? data.name : user;
  identity = { user, name, expiresAt: validTime(data.expiresAt) };
  pendingToken = null;
  sessionNote = null;
  lockName(name);
  renderIdentity();
}

function endIdentity() {
  identity = null;
  pendingToken = null;
  sessionNote = null;
  unlockName();
  renderIdentity();
}

// The token's name wins over the name field (the server ignores ?name= for
// an identified user): show it, read-only, and give the typed one back later.
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
  if (identity.expiresAt) logLine(t("renewed", fmtTime(identity.expiresAt)));
}

function onRefreshRefused() {
  pendingToken = null;
  if (identity) setSessionNote("renewFailed", identity.expiresAt);
  logLine(t("err_bad_token"), "error");
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
  logLine(t("expired"), "error");
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
  const room = el.room.value.trim() || "lobby";
  if (room !== stateRoom) { resetResume(room); el.log.replaceChildren(); }
  // The token as a subprotocol keeps it out of the URL (and proxies' access
  // logs); only a token that cannot be one, or a server without it, uses ?token=.
  const token = el.token.value;
  const asProtocol = !legacyServer && PROTOCOL_SAFE.test(token);
  const params = new URLSearchParams(asProtocol ? {} : { token });
  params.set("name", el.name.value.trim());
  params.set("room", room);
  sentEpoch = null;
  if (lastSeq !== null) {
    params.set("since", String(lastSeq));
    if (epoch !== null) { params.set("epoch", epoch); sentEpoch = epoch; }
  }
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
    clearTimeout(flushTimer);
    el.online.hidden = true;
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
  logLine(t(why, arg), "error");
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
  if (!socket) return;
  const old = socket;
  socket = null;
  old.close(1000, "reconnecting");
}

// ---- sending and the offline queue -----------------------------------------

function canSend() {
  return socket?.readyState === WebSocket.OPEN && socket.bufferedAmount < BUFFER_LIMIT;
}

function flush() {
  clearTimeout(flushTimer);
  while (queue.length > 0 && canSend()) socket.send(JSON.stringify({ type: "message", text: queue.shift() }));
  renderQueue();
  // Still queued but the socket is open: wait for the buffer to drain.
  if (queue.length > 0 && socket?.readyState === WebSocket.OPEN) flushTimer = setTimeout(flush, 100);
}

function renderQueue() {
  el.queue.replaceChildren(...queue.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
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
  if (queue.length === 0 && canSend()) {
    socket.send(JSON.stringify({ type: "message", text }));
  } else {
    if (queue.length >= QUEUE_MAX) { showError(t("queueFull", QUEUE_MAX), "queue_full"); return; }
    queue.push(text);
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

function restoreFields() {
  el.room.value = store.get("room") || el.room.value;
  el.name.value = store.get("name") || el.name.value;
  const token = store.get("token");
  if (token !== null) { el.token.value = token; el.remember.checked = true; }
}

// ---- wiring ----------------------------------------------------------------

el.conn.addEventListener("submit", (ev) => { ev.preventDefault(); connect(); });
el.disconnect.addEventListener("click", disconnect);
el.form.addEventListener("submit", submitMessage);
el.message.addEventListener("input", () => { updateCounter(); if (el.error.textContent) clearError(); });
el.remember.addEventListener("change", () => {
  if (el.remember.checked) store.set("token", el.token.value);
  else store.del("token");
});
el.token.addEventListener("change", () => { if (el.remember.checked) store.set("token", el.token.value); });
el.lang.addEventListener("change", () => {
  lang = STRINGS[el.lang.value] ? el.lang.value : "en";
  store.set("lang", lang);
  applyLanguage();
});
window.addEventListener("online", () => { if (wanted && !socket) { attempt = 0; open(); } });

restoreFields();
applyLanguage();
// Like the reference page, connect on load, but only with a remembered token,
// and once the page knows whether the server takes the token as a subprotocol.
if (!el.token.value) el.token.focus();
loadPageConfig().finally(() => { if (el.token.value && !wanted) connect(); });
