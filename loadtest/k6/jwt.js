//! k6 JWT scenario: every virtual user mints its own HS256 JWT in the script
//! (k6/crypto HMAC-SHA256, base64url from k6/encoding) with its own `sub`,
//! a `name` and an `exp` JWT_TTL ahead, and connects with it as the
//! subprotocol `ws-chat.token.<jwt>` beside `ws-chat.v2` (no token in the
//! URL). It checks that the `system` event names its user, its name and the
//! expiry, then sends SENDS messages and checks that every message it
//! receives carries its sender's `user`. The server must have the same
//! HS256 secret: JWT_SECRET (and JWT_KID when its key has a kid).
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'k6/timers';
import { cfg, envDuration, envValue, onceEach, openSocket, parseEvent, parseStamp, runPrefix, stamp } from './lib.js';

const clients = envValue('CLIENTS', 20);
const sends = envValue('SENDS', 3);
const ttlS = envDuration('JWT_TTL', 300);
const secret = __ENV.JWT_SECRET || '';
const kid = __ENV.JWT_KID || '';
const windowS = envDuration('WINDOW', 1);
const sendEveryMs = 300;

const identified = new Rate('jwt_identified');
const carriesUser = new Rate('jwt_message_user');
const echoed = new Rate('jwt_echoes');
const errors = new Counter('chat_errors');
const upgrade = new Trend('upgrade_latency', true);

export const options = {
  scenarios: {
    users: onceEach(clients, windowS + (sends * sendEveryMs) / 1000 + 30),
  },
  thresholds: {
    checks: ['rate==1'],
    jwt_identified: ['rate==1'],
    jwt_message_user: ['rate==1'],
    jwt_echoes: ['rate==1'],
    chat_errors: ['count<1'],
    upgrade_latency: [`p(95)<${cfg.p95Ms}`],
  },
};

const b64url = (text) => encoding.b64encode(text, 'rawurl');

/** A compact HS256 JWT of `claims`, signed with `key` (RFC 7519, 7515). */
export function mintHs256(claims, key, keyId) {
  const header = keyId ? { alg: 'HS256', typ: 'JWT', kid: keyId } : { alg: 'HS256', typ: 'JWT' };
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = crypto.hmac('sha256', key, signingInput, 'binary');
  return `${signingInput}.${encoding.b64encode(signature, 'rawurl')}`;
}

export function setup() {
  if (secret.length < 32) {
    throw new Error('JWT_SECRET must be the HS256 secret the server verifies with (at least 32 bytes)');
  }
  return { startAt: Date.now() + 1000, prefix: runPrefix() };
}

export default function (data) {
  const idx = __VU - 1;
  const sub = `${data.prefix}-user-${idx}`;
  const name = `k6 user ${idx}`;
  const now = Math.floor(Date.now() / 1000);
  const token = mintHs256({ sub, name, iat: now, exp: now + ttlS }, secret, kid);
  const at = data.startAt + Math.floor((idx / clients) * windowS * 1000);

  setTimeout(() => {
    const began = Date.now();
    let system = null;
    let mine = 0;
    let timer = null;
    let done = false;
    let giveUp = null;
    const ws = openSocket({
      token: null,
      protocols: ['ws-chat.v2', `ws-chat.token.${token}`],
      name: `ignored${idx}`,
      room: `${data.prefix}-jwt-${idx % cfg.rooms}`,
    });
    const finish = () => {
      if (done) return;
      done = true;
      if (timer !== null) clearInterval(timer);
      if (giveUp !== null) clearTimeout(giveUp);
      identified.add(system !== null);
      echoed.add(mine === sends);
      ws.close();
    };
    ws.onopen = () => upgrade.add(Date.now() - began);
    ws.onmessage = (event) => {
      const msg = parseEvent(event.data);
      if (msg === null) {
        errors.add(1, { code: 'unparsable_event' });
      } else if (msg.type === 'system') {
        const ok = check(msg, {
          'system: user is the token sub': (m) => m.user === sub,
          'system: name is the token name': (m) => m.name === name,
          'system: expiresAt is the token exp': (m) => Date.parse(m.expiresAt) === (now + ttlS) * 1000,
        });
        if (ok) system = msg;
      } else if (msg.type === 'history') {
        let seq = 0;
        timer = setInterval(() => {
          seq += 1;
          if (seq > sends) {
            clearInterval(timer);
            timer = null;
            return;
          }
          ws.send(JSON.stringify({ type: 'message', text: stamp('k6j', sub, seq) }));
        }, sendEveryMs);
      } else if (msg.type === 'error') {
        errors.add(1, { code: msg.code });
        console.warn(`user ${idx}: error ${msg.code}`);
      } else if (msg.type === 'message' && msg.message) {
        const s = parseStamp(msg.message.text, 'k6j');
        if (s === null) return;
        carriesUser.add(msg.message.user === s.publisher);
        if (s.publisher === sub) {
          mine += 1;
          if (mine === sends) finish();
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
    // Whatever happened, give up a while after the last send was due.
    giveUp = setTimeout(finish, sends * sendEveryMs + 10000);
  }, Math.max(0, at - Date.now()));
}
