// server.mjs — starts and stops the server the compatibility tests talk to,
// the way a user of the reference chat would run it: with no configuration
// at all (no PORT, CHAT_TOKEN, ALLOWED_ORIGINS or any CHAT_* setting), so it
// listens on :8080 with token dev-token and the origins
// http://localhost:8080 and http://127.0.0.1:8080.
//
// COMPAT_SERVER names the server: the ws-chat binary (default
// target/debug/ws-chat; ready when its admin port :8081 answers /readyz), or
// a server.js speaking plain protocol version 1, run with node, or with the
// program COMPAT_RUNTIME names (ready when :8080 answers /healthz).
// `make test-reference` runs these tests against the reference chat that
// way, which shows that they expect what the reference does; `make
// test-bun-peer` runs them against the benchmark's Bun peer
// (loadtest/peers/bun/server.js, COMPAT_RUNTIME=target/bun/node_modules/.bin/bun).
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { dirname, isAbsolute, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const chosen = process.env.COMPAT_SERVER || "target/debug/ws-chat";
export const SERVER_PATH = isAbsolute(chosen) ? chosen : resolve(REPO, chosen);
/**
 * True when the server under test is a server.js (the reference chat, or the
 * benchmark's Bun peer): plain protocol version 1, none of ws-chat's additions.
 */
export const IS_REFERENCE = SERVER_PATH.endsWith(".js");
/** What runs a server.js: node (this process's), or COMPAT_RUNTIME. */
const RUNTIME = process.env.COMPAT_RUNTIME ? resolve(REPO, process.env.COMPAT_RUNTIME) : process.execPath;
export const SERVER_NAME = !IS_REFERENCE ? `ws-chat (${SERVER_PATH})`
  : process.env.COMPAT_RUNTIME ? `${SERVER_PATH} on ${RUNTIME}` : `the reference chat (${SERVER_PATH})`;

const PUBLIC_PORT = 8080;
const ADMIN_PORT = 8081;
const READY_URL = IS_REFERENCE ? `http://127.0.0.1:${PUBLIC_PORT}/healthz` : `http://127.0.0.1:${ADMIN_PORT}/readyz`;
const PORT_WAIT_MS = 60_000;
const READY_WAIT_MS = 20_000;

function portIsFree(port) {
  return new Promise((ok) => {
    const probe = createServer();
    probe.once("error", () => ok(false));
    probe.listen(port, "0.0.0.0", () => probe.close(() => ok(true)));
  });
}

async function ready() {
  try {
    const res = await fetch(READY_URL, { signal: AbortSignal.timeout(1000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Starts the server. The fixed ports must be free first: another server
 * there would answer in place of the one under test. Waits up to a minute
 * for them (another test run may be finishing), then fails.
 */
export async function startServer() {
  const ports = IS_REFERENCE ? [PUBLIC_PORT] : [PUBLIC_PORT, ADMIN_PORT];
  for (const port of ports) {
    const deadline = Date.now() + PORT_WAIT_MS;
    while (!(await portIsFree(port))) {
      if (Date.now() > deadline) {
        throw new Error(`port ${port} is still in use after ${PORT_WAIT_MS / 1000} s: stop whatever listens there (the tests need the defaults, :8080 and :8081)`);
      }
      await sleep(250);
    }
  }

  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith("CHAT_") || key === "PORT" || key === "ALLOWED_ORIGINS") delete env[key];
  }
  const [cmd, args] = IS_REFERENCE ? [RUNTIME, [SERVER_PATH]] : [SERVER_PATH, []];
  const child = spawn(cmd, args, { cwd: IS_REFERENCE ? dirname(SERVER_PATH) : REPO, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (chunk) => { output = (output + chunk).slice(-20_000); };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let exit = null;
  const exited = new Promise((ok) => child.once("exit", (code, signal) => { exit = { code, signal }; ok(exit); }));
  child.once("error", (err) => { output += `\nspawn failed: ${err.message}`; });

  const deadline = Date.now() + READY_WAIT_MS;
  while (!(await ready())) {
    if (exit || Date.now() > deadline) {
      child.kill("SIGKILL");
      const why = exit ? `exited early (${JSON.stringify(exit)})` : `not ready within ${READY_WAIT_MS / 1000} s (${READY_URL})`;
      throw new Error(`${SERVER_NAME} ${why}\n--- server output ---\n${output}`);
    }
    await sleep(100);
  }
  // Ready, and still ours: had it failed to bind, it would have exited.
  if (exit) throw new Error(`${SERVER_NAME} exited right after starting\n--- server output ---\n${output}`);

  return {
    get output() { return output; },
    /** Stops it; throws if it had died during the tests. */
    async stop() {
      if (exit) throw new Error(`${SERVER_NAME} died during the tests (${JSON.stringify(exit)})\n--- server output ---\n${output}`);
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
