//! k6 abuse scenario: misbehaving clients (over-rate, oversized text and frame,
//! bad JSON, wrong type, bad token, bad Origin) next to well-behaved members of
//! the same room; asserts the server's answers and that the well-behaved
//! members still receive every message of the well-behaved publisher.
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import { setTimeout } from 'k6/timers';
import {
  envDuration, envValue, onceEach, openSocket, parseEvent, recordDelivered, runMember, runPrefix, upgradeStatus,
} from './lib.js';

const duration = envDuration('DURATION', 10);
const watchers = envValue('WATCHERS', 5);
const sendCount = Math.max(1, Math.floor(duration));

const goodDelivered = new Rate('good_delivered');

function one(exec, startTime = '0s') {
  return { ...onceEach(1, 60, exec), startTime };
}

export const options = {
  scenarios: {
    watchers: { ...one('watcher'), vus: watchers },
    flood: one('flood', '2s'),
    tooLarge: one('tooLarge', '2s'),
    bigFrame: one('bigFrame', '2s'),
    badJson: one('badJson', '2s'),
    badType: one('badType', '2s'),
    badToken: one('badToken', '2s'),
    badOrigin: one('badOrigin', '2s'),
  },
  thresholds: {
    checks: ['rate==1'],
    good_delivered: ['rate==1'],
  },
};

export function setup() {
  return { prefix: runPrefix() };
}

const room = (data) => `${data.prefix}-abuse`;

// Well-behaved members; the first one also publishes once per second.
export function watcher(data) {
  const rank = __VU - 1;
  runMember(
    {
      name: `w${rank}`,
      room: room(data),
      tag: 'good',
      publisher: rank === 0,
      rate: 1,
      sendCount,
      startDelayMs: 0,
      publishAtMs: 1500,
      closeAtMs: 1500 + sendCount * 1000 + 3000,
    },
    {
      onError: (code, where) => console.warn(`watcher ${rank}: ${where} error ${code}`),
      onDone: (received) => {
        recordDelivered(goodDelivered, received, sendCount);
        check(received, { 'watcher received every good message': (r) => r.size === sendCount });
      },
    },
  );
}

// Opens a member connection, runs `act(ws)` once `history` arrived, hands
// every later event to `observe(msg)`, and after `waitMs` calls `verdict()`
// with the socket state.
function misbehave(data, name, act, observe, verdict, waitMs = 2500) {
  const state = { open: false, closed: false, error: '' };
  const ws = openSocket({ name, room: room(data) });
  let acted = false;
  ws.onopen = () => {
    state.open = true;
  };
  ws.onmessage = (event) => {
    const msg = parseEvent(event.data);
    if (msg === null) return;
    if (msg.type === 'history' && !acted) {
      acted = true;
      act(ws);
      return;
    }
    if (acted) observe(msg);
  };
  ws.onerror = (event) => {
    state.error += String(event.error);
  };
  ws.onclose = (event) => {
    state.closed = true;
    if (event && event.code) state.error += ` code ${event.code}`;
  };
  setTimeout(() => {
    state.stillOpen = ws.readyState === 1;
    verdict(state, acted);
    ws.close();
  }, waitMs);
}

function expectError(data, name, payload, code) {
  const codes = [];
  misbehave(
    data,
    name,
    (ws) => ws.send(payload),
    (msg) => msg.type === 'error' && codes.push(msg.code),
    (state) =>
      check(codes, {
        [`${name}: answered error ${code}`]: (c) => c.length === 1 && c[0] === code,
        [`${name}: connection stays open`]: () => state.stillOpen,
      }),
  );
}

export function flood(data) {
  let accepted = 0;
  let limited = 0;
  misbehave(
    data,
    'flooder',
    (ws) => {
      for (let i = 0; i < 40; i += 1) ws.send(JSON.stringify({ type: 'message', text: `flood ${i}` }));
    },
    (msg) => {
      if (msg.type === 'error' && msg.code === 'rate_limited') limited += 1;
      if (msg.type === 'message' && msg.message && msg.message.from === 'flooder') accepted += 1;
    },
    (state) =>
      check(null, {
        'flood: over-rate messages answered rate_limited': () => limited >= 18,
        // 20 in the burst, plus at most one refilled while the 40 went out.
        'flood: at most 21 of 40 accepted': () => accepted >= 19 && accepted <= 21,
        'flood: connection stays open': () => state.stillOpen,
      }),
  );
}

export function tooLarge(data) {
  expectError(data, 'toolarge', JSON.stringify({ type: 'message', text: 'a'.repeat(600) }), 'too_large');
}

export function badJson(data) {
  expectError(data, 'badjson', '{"type":"message","text":', 'bad_json');
}

export function badType(data) {
  expectError(data, 'badtype', JSON.stringify({ type: 'typing', text: 'hi' }), 'bad_type');
}

export function bigFrame(data) {
  misbehave(
    data,
    'bigframe',
    (ws) => ws.send(JSON.stringify({ type: 'message', text: 'b'.repeat(3000) })),
    () => {},
    (state) =>
      check(state, {
        'bigframe: closed with 1009': (s) => s.closed && s.error.includes('1009'),
      }),
  );
}

export function badToken() {
  check(upgradeStatus({ token: 'not-a-token', room: 'lobby' }), {
    'bad token: upgrade answered 401': (status) => status === 401,
  });
}

export function badOrigin() {
  check(upgradeStatus({ origin: 'http://evil.example', room: 'lobby' }), {
    'bad origin: upgrade answered 403': (status) => status === 403,
  });
}
