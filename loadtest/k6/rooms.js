//! k6 many-rooms scenario (protocol version 2): every virtual user holds
//! ROOMS_PER_VU rooms on one socket, the room of its query string plus
//! `join`s, out of a pool of POOL rooms, then sends one message to each of
//! SENDS of its rooms (`message` with `room`). It checks that every
//! `history` names a room it asked for, that every message it receives is
//! from a room it holds, and that each of its own messages comes back in the
//! room it was sent to.
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'k6/timers';
import { cfg, envDuration, envValue, onceEach, openSocket, parseEvent, parseStamp, runPrefix, stamp } from './lib.js';

const clients = envValue('CLIENTS', 20);
const perVu = envValue('ROOMS_PER_VU', 8);
const pool = envValue('POOL', 16);
const sends = Math.min(envValue('SENDS', 4), perVu);
const windowS = envDuration('WINDOW', 1);
const sendEveryMs = 300;

const joinedAll = new Rate('rooms_joined_all');
const echoed = new Rate('rooms_echoes');
const wrongRoom = new Counter('rooms_wrong_room');
const errors = new Counter('chat_errors');
const joinTime = new Trend('rooms_join_all_ms', true);

export const options = {
  scenarios: {
    users: onceEach(clients, windowS + (sends * sendEveryMs) / 1000 + 30),
  },
  thresholds: {
    checks: ['rate==1'],
    rooms_joined_all: ['rate==1'],
    rooms_echoes: ['rate==1'],
    rooms_wrong_room: ['count<1'],
    chat_errors: ['count<1'],
    rooms_join_all_ms: [`p(95)<${cfg.p95Ms * 4}`],
  },
};

export function setup() {
  if (perVu > pool) throw new Error('ROOMS_PER_VU must not exceed POOL');
  return { startAt: Date.now() + 1000, prefix: runPrefix() };
}

export default function (data) {
  const idx = __VU - 1;
  // Each user's rooms: a stride through the pool, so users share rooms.
  const rooms = [];
  for (let k = 0; k < perVu; k += 1) rooms.push(`${data.prefix}-m${(idx + k * 3) % pool}`);
  const held = new Set(rooms);
  const at = data.startAt + Math.floor((idx / clients) * windowS * 1000);

  setTimeout(() => {
    const began = Date.now();
    const histories = new Set();
    const echoes = new Set();
    let timer = null;
    let done = false;
    let giveUp = null;
    const ws = openSocket({ protocols: ['ws-chat.v2'], name: `m${idx}`, room: rooms[0] });
    const finish = () => {
      if (done) return;
      done = true;
      if (timer !== null) clearInterval(timer);
      if (giveUp !== null) clearTimeout(giveUp);
      joinedAll.add(histories.size === perVu);
      echoed.add(echoes.size === sends);
      ws.close();
    };
    const startSending = () => {
      joinTime.add(Date.now() - began);
      let n = 0;
      timer = setInterval(() => {
        if (n >= sends) {
          clearInterval(timer);
          timer = null;
          return;
        }
        const room = rooms[n];
        n += 1;
        ws.send(JSON.stringify({ type: 'message', room, text: stamp('k6r', `${idx}:${room}`, n) }));
      }, sendEveryMs);
    };
    ws.onmessage = (event) => {
      const msg = parseEvent(event.data);
      if (msg === null) {
        errors.add(1, { code: 'unparsable_event' });
      } else if (msg.type === 'history') {
        check(msg, { 'history: names a room it asked for': (m) => held.has(m.room) });
        const first = histories.size === 0;
        histories.add(msg.room);
        if (first) {
          for (const room of rooms.slice(1)) ws.send(JSON.stringify({ type: 'join', room }));
        }
        if (histories.size === perVu) startSending();
      } else if (msg.type === 'error') {
        errors.add(1, { code: msg.code });
        console.warn(`user ${idx}: error ${msg.code} ${msg.room || ''}`);
      } else if (msg.type === 'message' && msg.message) {
        if (!held.has(msg.message.room)) wrongRoom.add(1);
        const s = parseStamp(msg.message.text, 'k6r');
        if (s === null) return;
        const [who, room] = s.publisher.split(':');
        if (who === String(idx)) {
          check(msg, { 'own message: back in the room it was sent to': (m) => m.message.room === room });
          echoes.add(room);
          if (echoes.size === sends) finish();
        }
      }
    };
    ws.onerror = (event) => {
      if (!done) {
        errors.add(1, { code: 'socket' });
        console.warn(`user ${idx}: ${event.error}`);
      }
      finish();
    };
    giveUp = setTimeout(finish, sends * sendEveryMs + 15000);
  }, Math.max(0, at - Date.now()));
}
