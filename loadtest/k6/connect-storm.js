//! k6 connect storm: CLIENTS connections opened within WINDOW seconds, spread
//! over ROOMS rooms; measures upgrade latency, join latency (until `history`
//! arrives) and failed upgrades.
import { Rate, Trend } from 'k6/metrics';
import { setTimeout } from 'k6/timers';
import { cfg, envDuration, envValue, onceEach, openSocket, parseEvent, runPrefix } from './lib.js';

const clients = envValue('CLIENTS', 150);
const windowS = envDuration('WINDOW', 2);
const holdS = envDuration('HOLD', 3);

const upgrade = new Trend('upgrade_latency', true);
const join = new Trend('join_latency', true);
const connected = new Rate('connect_ok');
const joinedOk = new Rate('join_ok');

export const options = {
  scenarios: {
    storm: onceEach(clients, windowS + holdS + 30),
  },
  thresholds: {
    connect_ok: ['rate>0.99'],
    join_ok: ['rate>0.99'],
    upgrade_latency: ['p(95)<500', 'p(99)<1000'],
    join_latency: ['p(95)<1000'],
  },
};

export function setup() {
  return { startAt: Date.now() + 1000, prefix: runPrefix() };
}

export default function (data) {
  const idx = __VU - 1;
  const at = data.startAt + Math.floor((idx / clients) * windowS * 1000);
  setTimeout(() => {
    const began = Date.now();
    let opened = false;
    let joined = false;
    let done = false;
    const ws = openSocket({ name: `s${idx}`, room: `${data.prefix}-storm-${idx % cfg.rooms}` });
    const settle = () => {
      if (done) return;
      done = true;
      connected.add(opened);
      joinedOk.add(joined);
    };
    ws.onopen = () => {
      opened = true;
      upgrade.add(Date.now() - began);
    };
    ws.onmessage = (event) => {
      const msg = parseEvent(event.data);
      if (msg !== null && msg.type === 'history' && !joined) {
        joined = true;
        join.add(Date.now() - began);
      }
    };
    ws.onerror = (event) => {
      if (!done) console.warn(`client ${idx}: ${event.error}`);
      settle();
    };
    setTimeout(() => {
      settle();
      ws.close();
    }, holdS * 1000 + windowS * 1000 - (Date.now() - data.startAt));
  }, Math.max(0, at - Date.now()));
}
