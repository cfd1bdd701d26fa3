//! k6 fan-out scenario: members ramp into ROOMS rooms, PUBLISHERS per room send
//! timestamped messages at RATE/s for DURATION, every member records delivery
//! latency and whether each expected message arrived within LATE_MS.
import { Counter, Rate, Trend } from 'k6/metrics';
import { cfg, onceEach, recordDelivered, runMember, runPrefix } from './lib.js';

const latency = new Trend('delivery_latency', true);
const delivered = new Rate('delivered');
const errors = new Counter('chat_errors');
const sentMsgs = new Counter('chat_sent');
const joined = new Trend('join_time', true);

const total = cfg.rooms * cfg.members;
const sendCount = Math.max(1, Math.floor(cfg.duration * cfg.rate));
const periodMs = 1000 / cfg.rate;

export const options = {
  scenarios: {
    members: onceEach(total, cfg.ramp + cfg.duration + cfg.drain + 30),
  },
  thresholds: {
    delivery_latency: [`p(95)<${cfg.p95Ms}`, `p(99)<${cfg.p99Ms}`],
    delivered: ['rate>0.999'],
    chat_errors: ['count<1'],
    join_time: ['p(95)<1000'],
  },
};

export function setup() {
  if (cfg.publishers > cfg.members) throw new Error('PUBLISHERS must not exceed MEMBERS');
  return { startAt: Date.now() + 1000, prefix: runPrefix() };
}

export default function (data) {
  const idx = __VU - 1;
  const room = idx % cfg.rooms;
  const rank = Math.floor(idx / cfg.rooms);
  const publisher = rank < cfg.publishers;
  const rel = (abs) => Math.max(0, abs - Date.now());
  const publishBase = data.startAt + cfg.ramp * 1000 + 1000;
  // Publishers of one room are spread over the send period, not in lockstep.
  const jitter = publisher ? Math.floor((rank * periodMs) / cfg.publishers) : 0;
  const expected = cfg.publishers * sendCount;

  runMember(
    {
      name: `m${idx}`,
      room: `${data.prefix}-fan-${room}`,
      tag: 'k6f',
      publisher,
      rate: cfg.rate,
      sendCount,
      startDelayMs: rel(data.startAt + Math.floor((idx / total) * cfg.ramp * 1000)),
      publishAtMs: rel(publishBase + jitter),
      closeAtMs: rel(publishBase + cfg.duration * 1000 + periodMs + cfg.drain * 1000),
    },
    {
      onJoined: (ms) => joined.add(ms),
      onDelivery: (ms) => latency.add(ms),
      onSent: () => sentMsgs.add(1),
      onError: (code, where) => {
        errors.add(1, { code, where });
        console.warn(`member ${idx}: ${where} error ${code}`);
      },
      onClosedEarly: () => errors.add(1, { code: 'closed_early', where: 'socket' }),
      onDone: (received) => recordDelivered(delivered, received, expected),
    },
  );
}
