//! k6 soak: steady fan-out (ROOMS x MEMBERS, PUBLISHERS at RATE/s) for
//! DURATION (default 20 s) while CHURNERS keep joining and leaving; checks that
//! errors stay at zero and that latency in the second half is no worse than
//! in the first (per member, with slack).
import { Counter, Rate, Trend } from 'k6/metrics';
import { clearTimeout, setTimeout } from 'k6/timers';
import {
  cfg, envDuration, envValue, onceEach, openSocket, parseEvent, recordDelivered, runMember, runPrefix,
} from './lib.js';

const duration = envDuration('DURATION', 20);
const churners = envValue('CHURNERS', 10);
const total = cfg.rooms * cfg.members;
const sendCount = Math.max(1, Math.floor(duration * cfg.rate));
const periodMs = 1000 / cfg.rate;

const latency = new Trend('delivery_latency', true);
const delivered = new Rate('delivered');
const errors = new Counter('chat_errors');
const noGrowth = new Rate('latency_not_growing');
const churnOk = new Rate('churn_join_ok');

export const options = {
  scenarios: {
    members: onceEach(total, cfg.ramp + duration + cfg.drain + 30),
    churn: {
      executor: 'constant-vus',
      vus: churners,
      startTime: `${Math.ceil(cfg.ramp + 2)}s`,
      duration: `${Math.max(1, Math.floor(duration - 2))}s`,
      exec: 'churn',
    },
  },
  thresholds: {
    'chat_errors{half:first}': ['count<1'],
    'chat_errors{half:second}': ['count<1'],
    'delivery_latency{half:first}': [`p(95)<${cfg.p95Ms}`],
    'delivery_latency{half:second}': [`p(95)<${cfg.p95Ms}`, `p(99)<${cfg.p99Ms}`],
    delivered: ['rate>0.999'],
    latency_not_growing: ['rate>0.95'],
    churn_join_ok: ['rate>0.99'],
  },
};

export function setup() {
  if (cfg.publishers > cfg.members) throw new Error('PUBLISHERS must not exceed MEMBERS');
  const startAt = Date.now() + 1000;
  const publishAt = startAt + cfg.ramp * 1000 + 1000;
  return { startAt, publishAt, midpoint: publishAt + (duration * 1000) / 2, prefix: runPrefix() };
}

function half(data) {
  return Date.now() < data.midpoint ? 'first' : 'second';
}

function median(values) {
  if (values.length === 0) return 0;
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export default function (data) {
  const idx = __VU - 1;
  const rank = Math.floor(idx / cfg.rooms);
  const publisher = rank < cfg.publishers;
  const rel = (abs) => Math.max(0, abs - Date.now());
  const jitter = publisher ? Math.floor((rank * periodMs) / cfg.publishers) : 0;
  const expected = cfg.publishers * sendCount;
  const byHalf = { first: [], second: [] };

  runMember(
    {
      name: `s${idx}`,
      room: `${data.prefix}-soak-${idx % cfg.rooms}`,
      tag: 'k6s',
      publisher,
      rate: cfg.rate,
      sendCount,
      startDelayMs: rel(data.startAt + Math.floor((idx / total) * cfg.ramp * 1000)),
      publishAtMs: rel(data.publishAt + jitter),
      closeAtMs: rel(data.publishAt + duration * 1000 + periodMs + cfg.drain * 1000),
    },
    {
      onDelivery: (ms, s) => {
        const h = s.sentAt < data.midpoint ? 'first' : 'second';
        latency.add(ms, { half: h });
        byHalf[h].push(ms);
      },
      onError: (code, where) => {
        errors.add(1, { code, where, half: half(data) });
        console.warn(`member ${idx}: ${where} error ${code}`);
      },
      onClosedEarly: () => errors.add(1, { code: 'closed_early', half: half(data) }),
      onDone: (received) => {
        recordDelivered(delivered, received, expected);
        const first = median(byHalf.first);
        noGrowth.add(median(byHalf.second) <= Math.max(first * 2, first + 20));
      },
    },
  );
}

// One join-and-leave cycle per iteration, in the soak rooms.
export function churn(data) {
  const idx = __VU;
  let joined = false;
  const ws = openSocket({ name: `c${idx}`, room: `${data.prefix}-soak-${idx % cfg.rooms}` });
  // Not joined within 3 s counts as a failed join; the timer ends with the socket.
  const giveUp = setTimeout(() => {
    churnOk.add(false);
    ws.close();
  }, 3000);
  ws.onmessage = (event) => {
    const msg = parseEvent(event.data);
    if (msg !== null && msg.type === 'history' && !joined) {
      joined = true;
      clearTimeout(giveUp);
      churnOk.add(true);
      setTimeout(() => ws.close(), 500 + Math.floor(Math.random() * 1000));
    }
  };
  ws.onerror = (event) => {
    errors.add(1, { code: String(event.error), where: 'churn', half: half(data) });
  };
}
