// harness.mjs — what every browser test shares: the real ws-chat server on
// free ports (start, SIGTERM, restart on the same port), Debian's chromium via
// playwright-core, a page that has connected, and a plain Node WebSocket peer
// for injecting messages. No fixed sleeps: everything waits for a condition.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, isAbsolute, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import { chromium } from "playwright-core";
import WebSocket from "ws";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const SCREENSHOTS = resolve(REPO, "artifacts/screenshots");
const BIN = process.env.WS_CHAT_BIN || "target/debug/ws-chat";
const BIN_PATH = isAbsolute(BIN) ? BIN : resolve(REPO, BIN);
export const TOKEN = `browser-test-${process.pid}`;

export async function freePort() {
  const srv = createServer();
  await new Promise((ok, fail) => srv.once("error", fail).listen(0, "127.0.0.1", ok));
  const { port } = srv.address();
  await new Promise((ok) => srv.close(ok));
  return port;
}

/** Polls `check` until it returns a truthy value or `ms` runs out. */
export async function until(what, check, ms = 15_000, every = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

async function httpOk(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
  return res.ok;
}

/**
 * Starts ws-chat. `origins` overrides the allowed Origin list, `extraEnv`
 * adds settings (e.g. CHAT__AUTH__TOKENS_FILE), `args` are its arguments
 * (e.g. ["--config", file] for settings the environment cannot express,
 * such as JWT keys). Returns a handle whose restart() starts it again on
 * the same ports.
 * WS_CHAT_BIN may also name a .js server (the reference with this page
 * copied in), run with node and its PORT/ALLOWED_ORIGINS/CHAT_TOKEN.
 */
export async function startServer(opts = {}) {
  // A free port can be taken by another process before the server binds it:
  // when the caller did not choose the ports, try again with new ones.
  for (let tries = 1; ; tries += 1) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (opts.port || tries >= 3 || !/address already in use|EADDRINUSE/i.test(err.message)) throw err;
    }
  }
}

async function startOnce({ port, adminPort, origins, extraEnv = {}, args: binArgs = [] } = {}) {
  port ??= await freePort();
  adminPort ??= await freePort();
  origins ??= [`http://127.0.0.1:${port}`, `http://localhost:${port}`];
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("CHAT_") || k === "PORT" || k === "ALLOWED_ORIGINS") delete env[k];
  Object.assign(env, {
    CHAT__SERVER__HOST: "127.0.0.1", CHAT__SERVER__PORT: String(port),
    CHAT__SERVER__ADMIN_HOST: "127.0.0.1", CHAT__SERVER__ADMIN_PORT: String(adminPort),
    CHAT__AUTH__ALLOWED_ORIGINS: origins.join(","), CHAT_TOKEN: TOKEN,
    CHAT__SHUTDOWN__DRAIN_WINDOW: "200ms", CHAT__TELEMETRY__LOG_FORMAT: "text",
    RUST_LOG: process.env.RUST_LOG || "warn",
  }, extraEnv);
  const isJs = BIN_PATH.endsWith(".js");
  if (isJs) Object.assign(env, { PORT: String(port), ALLOWED_ORIGINS: origins.join(",") });
  const [cmd, args] = isJs ? [process.execPath, [BIN_PATH]] : [BIN_PATH, binArgs];
  const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (chunk) => { output = (output + chunk).slice(-20_000); };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((ok) => child.once("exit", (code, signal) => ok({ code, signal })));
  let gone = false;
  exited.then(() => { gone = true; });
  const readyUrl = isJs ? `http://127.0.0.1:${port}/healthz` : `http://127.0.0.1:${adminPort}/readyz`;
  try {
    await until(`${readyUrl} to answer 200`, async () => {
      if (gone) throw new Error(`ws-chat exited early:\n${output}`);
      return httpOk(readyUrl);
    }, 20_000);
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`${err.message}\n--- server output ---\n${output}`);
  }
  const handle = {
    port, adminPort, origins,
    base: `http://127.0.0.1:${port}`,
    get output() { return output; },
    /** SIGTERM, then wait for exit (SIGKILL after 10 s). */
    async stop() {
      if (gone) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
    restart: () => startServer({ port, adminPort, origins, extraEnv, args: binArgs }),
  };
  return handle;
}

export const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
  "--no-first-run", "--disable-quic", "--disable-sync",
];

/** Debian's chromium; playwright gives every launch a fresh user-data dir. */
export function launchBrowser() {
  return chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/**
 * Opens the page in a new context and, unless `connect: false`, connects.
 * Records every WebSocket the page opens, dialogs, page errors and CSP
 * violations so tests can assert on them.
 */
export async function openPage(browser, server, opts = {}) {
  const { room = "lobby", name = "tester", token = TOKEN, locale = "en-US", connect = true,
    viewport = { width: 1280, height: 800 }, host = "127.0.0.1" } = opts;
  const context = await browser.newContext({ viewport, locale });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const seen = { sockets: [], sent: [], dialogs: [], errors: [], console: [] };
  page.on("websocket", (ws) => {
    seen.sockets.push({ url: ws.url(), at: Date.now() });
    ws.on("framesent", (f) => seen.sent.push(String(f.payload)));
  });
  page.on("dialog", (d) => { seen.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") seen.console.push(m.text()); });
  await page.goto(`http://${host}:${server.port}/`);
  await page.fill("#room", room);
  await page.fill("#name", name);
  await page.fill("#token", token);
  if (connect) {
    await page.click("#connect");
    await waitOnline(page);
  }
  return { page, context, seen };
}

export function waitOnline(page, timeout = 15_000) {
  return page.waitForFunction(() => document.querySelector("#status").dataset.state === "online"
    && window.__wschat.readyState === 1 && window.__wschat.histories > 0, null, { timeout });
}

/** Texts of the chat messages on screen, in order. */
export function messageTexts(page) {
  return page.$$eval("#log .line.message .text", (nodes) => nodes.map((n) => n.textContent));
}

export function waitForText(page, text, timeout = 15_000) {
  return page.waitForFunction((t) => [...document.querySelectorAll("#log .line.message .text")]
    .some((n) => n.textContent === t), text, { timeout });
}

/** Sends through the page's own form, as a user would. */
export async function sendFromPage(page, text) {
  await page.fill("#message", text);
  await page.press("#message", "Enter");
}

/** A plain WebSocket client with an allowed Origin, for injecting messages. */
export async function peer(server, { room = "lobby", name = "peer", token = TOKEN } = {}) {
  const url = `ws://127.0.0.1:${server.port}/chat?${new URLSearchParams({ token, room, name })}`;
  const ws = new WebSocket(url, { origin: server.origins[0] });
  const events = [];
  ws.on("message", (raw) => events.push(JSON.parse(raw.toString("utf8"))));
  await new Promise((ok, fail) => { ws.once("open", ok); ws.once("error", fail); ws.once("unexpected-response", (_, res) => fail(new Error(`upgrade refused: ${res.statusCode}`))); });
  const texts = () => events.filter((e) => e.type === "message").map((e) => e.message.text)
    .concat(...events.filter((e) => e.type === "history").map((e) => e.messages.map((m) => m.text)));
  return {
    events,
    texts,
    send: (text) => ws.send(JSON.stringify({ type: "message", text })),
    /** Sends and waits for the server to echo it back (it is then in history). */
    async say(text) {
      const count = texts().filter((t) => t === text).length;
      ws.send(JSON.stringify({ type: "message", text }));
      await until(`echo of ${JSON.stringify(text)}`, async () => texts().filter((t) => t === text).length > count);
    },
    close: () => new Promise((ok) => { if (ws.readyState === WebSocket.CLOSED) ok(); else { ws.once("close", ok); ws.close(); } }),
  };
}

export function screenshotPath(name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return resolve(SCREENSHOTS, name);
}

/**
 * Registers before/after hooks for one test file: a ws-chat server and a
 * browser, shared by the file's tests. A test that restarts the server
 * replaces `env.server`, and the after hook stops whichever is current.
 */
export function fileEnv(serverOpts = {}) {
  const env = { server: null, browser: null };
  before(async () => {
    env.server = await startServer(serverOpts);
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}
