//! Shared settings and helpers for the k6 scenarios: environment, URLs, the
//! timestamped message format, and one "member" connection that publishes and
//! counts what it receives.
import { WebSocket } from 'k6/experimental/websockets';
import http from 'k6/http';
import { setTimeout, setInterval, clearInterval } from 'k6/timers';

function envNum(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got ${raw}`);
  return value;
}

// Durations accept "20s", "1.5s", "500ms", "2m" or a bare number of seconds.
function envSeconds(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw.trim());
  if (!m) throw new Error(`${name} must be a duration like 20s, got ${raw}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

export const cfg = {
  url: __ENV.URL || 'ws://127.0.0.1:8080/chat',
  origin: __ENV.ORIGIN || 'http://localhost:8080',
  token: __ENV.TOKEN || 'dev-token',
  rooms: envNum('ROOMS', 4),
  members: envNum('MEMBERS', 25),
  publishers: envNum('PUBLISHERS', 4),
  rate: envNum('RATE', 1),
  duration: envSeconds('DURATION', 10),
  ramp: envSeconds('RAMP', 3),
  // After the last send, how long receivers wait for stragglers. A message
  // that arrives more than LATE_MS after it was sent counts as not delivered.
  drain: envSeconds('DRAIN', 3.5),
  lateMs: envNum('LATE_MS', 3000),
  p95Ms: envNum('P95_MS', 250),
  p99Ms: envNum('P99_MS', 500),
  // Rooms are named <prefix>-...; setup() picks one per run so runs don't mix.
  prefix: __ENV.ROOM_PREFIX || '',
};

export function runPrefix() {
  return cfg.prefix || `k6${Date.now() % 1000000}`;
}

// One VU per connection, each running the default function exactly once.
export function onceEach(vus, maxSeconds, exec) {
  const scenario = { executor: 'per-vu-iterations', vus, iterations: 1, maxDuration: `${Math.ceil(maxSeconds)}s` };
  if (exec) scenario.exec = exec;
  return scenario;
}

// Adds `expected` samples to a Rate: true for each message received within
// LATE_MS, false for the rest (late or never).
export function recordDelivered(rate, received, expected) {
  let onTime = 0;
  for (const ms of received.values()) if (ms <= cfg.lateMs) onTime += 1;
  for (let i = 0; i < expected; i += 1) rate.add(i < onTime);
  return onTime;
}

export function envValue(name, fallback) {
  return envNum(name, fallback);
}

export function envDuration(name, fallback) {
  return envSeconds(name, fallback);
}

// `token: null` leaves the token out of the URL (it travels as a subprotocol).
export function chatUrl(params) {
  const parts = params.token === null ? [] : [`token=${encodeURIComponent(params.token ?? cfg.token)}`];
  if (params.name) parts.push(`name=${encodeURIComponent(params.name)}`);
  if (params.room) parts.push(`room=${encodeURIComponent(params.room)}`);
  return `${cfg.url}?${parts.join('&')}`;
}

// `protocols`: subprotocols to offer (e.g. ws-chat.v2 and ws-chat.token.<jwt>).
export function openSocket(params) {
  const headers = { Origin: params.origin ?? cfg.origin };
  return new WebSocket(chatUrl(params), params.protocols ?? null, { headers, tags: params.tags });
}

// A plain HTTP request carrying WebSocket upgrade headers: the status shows
// what the server decided before any upgrade (401, 403, 429, ...).
export function upgradeStatus(params) {
  const httpUrl = chatUrl(params).replace(/^ws/, 'http');
  const res = http.get(httpUrl, {
    headers: {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      Origin: params.origin ?? cfg.origin,
    },
    redirects: 0,
    responseCallback: http.expectedStatuses({ min: 100, max: 599 }),
  });
  return res.status;
}

// Message text format: "<tag>|<publisher>|<seq>|<send time, ms since epoch>".
export function stamp(tag, publisher, seq) {
  return `${tag}|${publisher}|${seq}|${Date.now()}`;
}

export function parseStamp(text, tag) {
  if (typeof text !== 'string' || !text.startsWith(`${tag}|`)) return null;
  const parts = text.split('|');
  if (parts.length !== 4) return null;
  return { publisher: parts[1], seq: Number(parts[2]), sentAt: Number(parts[3]) };
}

export function parseEvent(data) {
  try {
    return JSON.parse(data);
  } catch (_) {
    return null;
  }
}

/**
 * One room member. Connects after `startDelayMs`, publishes `sendCount`
 * messages at `rate` per second from `publishAtMs` (if a publisher), records
 * every timestamped message it receives, and closes at `closeAtMs`.
 * Times are in ms relative to the call. `hooks` receives:
 *   onDelivery(latencyMs, entry), onError(code, where), onJoined(ms),
 *   onDone(received: Map "pub|seq" -> latencyMs), onSent(), onClosedEarly()
 */
export function runMember(opts, hooks) {
  const t0 = Date.now();
  const received = new Map();
  let ws = null;
  let timer = null;
  let closedByUs = false;
  let openedAt = 0;
  let sent = 0;

  const finish = () => {
    if (timer !== null) clearInterval(timer);
    timer = null;
    closedByUs = true;
    if (ws !== null) ws.close();
    if (hooks.onDone) hooks.onDone(received, sent);
  };

  setTimeout(() => {
    const began = Date.now();
    ws = openSocket({ name: opts.name, room: opts.room, tags: opts.tags });
    ws.onopen = () => {
      openedAt = Date.now();
      if (hooks.onOpen) hooks.onOpen(openedAt - began);
    };
    ws.onmessage = (event) => {
      const msg = parseEvent(event.data);
      if (msg === null) {
        if (hooks.onError) hooks.onError('unparsable_event', 'recv');
        return;
      }
      if (msg.type === 'history' && hooks.onJoined) hooks.onJoined(Date.now() - began);
      if (msg.type === 'error' && hooks.onError) hooks.onError(msg.code, 'event');
      if (msg.type !== 'message' || !msg.message) return;
      const s = parseStamp(msg.message.text, opts.tag);
      if (s === null) return;
      const latency = Date.now() - s.sentAt;
      const key = `${s.publisher}|${s.seq}`;
      if (!received.has(key)) {
        received.set(key, latency);
        if (hooks.onDelivery) hooks.onDelivery(latency, s);
      }
    };
    ws.onerror = (event) => {
      if (!closedByUs && hooks.onError) hooks.onError(String(event.error || 'error'), 'socket');
    };
    ws.onclose = () => {
      if (!closedByUs && hooks.onClosedEarly) hooks.onClosedEarly();
    };
  }, opts.startDelayMs);

  if (opts.publisher) {
    setTimeout(() => {
      let seq = 0;
      timer = setInterval(() => {
        if (seq >= opts.sendCount) {
          clearInterval(timer);
          timer = null;
          return;
        }
        if (ws === null || ws.readyState !== 1) {
          if (hooks.onError) hooks.onError('not_open', 'send');
          seq += 1;
          return;
        }
        seq += 1;
        ws.send(JSON.stringify({ type: 'message', text: stamp(opts.tag, opts.name, seq) }));
        sent += 1;
        if (hooks.onSent) hooks.onSent();
      }, 1000 / opts.rate);
    }, Math.max(0, opts.publishAtMs - (Date.now() - t0)));
  }

  setTimeout(finish, Math.max(0, opts.closeAtMs - (Date.now() - t0)));
}
