// identity.test.mjs — the page for identified users, with real HS256 JWTs
// minted here (node:crypto): the token travels as a subprotocol (never in the
// URL), the name is the token's and read-only, identified senders are marked,
// and session expiry: `expiring` → fetch the token URL → `refresh` on the same
// socket; no token URL → a notice; 4001 → "session expired", no reconnect
// loop; 4003 → no reconnect. Token lifetimes are a few seconds
// (auth.expiry_warning 2s, leeway 0s) so each test stays short.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import {
  TOKEN, launchBrowser, openPage, peer, screenshotPath, sendFromPage, startServer, until,
  waitForText, waitOnline,
} from "./harness.mjs";

const SECRET = `browser-identity-test-secret-${process.pid}-0123456789abcdef`;
const ODD_TOKEN = "odd/token=1"; // not an RFC 2616 token: cannot be a subprotocol

/** An HS256 JWT for `claims`, valid `ttl` seconds from now. */
function mint(claims, ttl = 3600) {
  const now = Math.floor(Date.now() / 1000);
  const part = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const signed = `${part({ alg: "HS256", typ: "JWT" })}.${part({ iat: now, exp: now + ttl, ...claims })}`;
  return `${signed}.${createHmac("sha256", SECRET).update(signed).digest("base64url")}`;
}

/** A JWT's `exp`, in milliseconds since the epoch. */
const expiryOf = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString()).exp * 1000;

const dir = mkdtempSync(join(tmpdir(), "ws-chat-identity-"));
const config = join(dir, "config.toml");
writeFileSync(config, `[[auth.jwt.keys]]\nalg = "HS256"\nsecret = "${SECRET}"\n`);
const jwtEnv = {
  CHAT__AUTH__TOKENS: `${TOKEN},${ODD_TOKEN}`, // guests
  CHAT__AUTH__EXPIRY_WARNING: "2s",
  CHAT__AUTH__JWT__LEEWAY: "0s",
  CHAT__LIMITS__IP_AUTH_FAILURE_BURST: "1000",
};

// Two servers: one that tells the page a token URL, one that does not.
const env = { withUrl: null, withoutUrl: null, browser: null };
before(async () => {
  const args = ["--config", config];
  env.withUrl = await startServer({ args, extraEnv: { ...jwtEnv, CHAT__AUTH__PAGE_TOKEN_URL: "/token" } });
  env.withoutUrl = await startServer({ args, extraEnv: jwtEnv });
  env.browser = await launchBrowser();
});
after(async () => {
  await env.browser?.close();
  await env.withUrl?.stop();
  await env.withoutUrl?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Serves the page's token URL with `answer(call)` (1, 2, …): a JWT, or an
 * HTTP status. Each call records the expiry the page showed when it asked.
 */
async function tokenUrl(page, answer) {
  const calls = [];
  await page.route("**/token", async (route) => {
    const headers = await route.request().allHeaders();
    const shown = await shownExpiry(page);
    calls.push({ method: route.request().method(), cookie: headers.cookie ?? "", shown });
    const out = answer(calls.length);
    if (typeof out === "number") await route.fulfill({ status: out, body: "no" });
    else await route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify({ token: out }) });
  });
  return calls;
}

const shownExpiry = (page) => page.getAttribute("#expires", "datetime");
const state = (page) => page.evaluate(() => document.querySelector("#status").dataset.state);
const noteKind = (page) => page.evaluate(() => document.querySelector("#session-note").dataset.kind);
const logTexts = (page) => page.$$eval("#log .line", (nodes) => nodes.map((n) => n.textContent));

test("a JWT: the token's name, read-only; no token in the socket URL; identified senders marked, guests not", async () => {
  const server = env.withUrl;
  const jwt = mint({ sub: "u-ana", name: "Ana" });
  const { page, context, seen } = await openPage(env.browser, server, { room: "who", name: "someone", token: jwt });
  assert.equal(await page.inputValue("#name"), "Ana", "the name from the token");
  assert.equal(await page.evaluate(() => document.querySelector("#name").readOnly), true);
  assert.equal(await page.getAttribute("#name", "aria-describedby"), "name-hint");
  assert.equal(await page.isVisible("#name-hint"), true);
  assert.match(await page.textContent("#whoami"), /Signed in as Ana \(user u-ana\)/);
  assert.match(await page.textContent("#status"), /Connected as Ana/);
  const expiresAt = await shownExpiry(page);
  assert.ok(Math.abs(Date.parse(expiresAt) - (Date.now() + 3600_000)) < 60_000, `expiry shown: ${expiresAt}`);
  assert.equal(await page.evaluate(() => window.__wschat.tokenIn), "subprotocol");
  assert.equal(seen.sockets.length, 1);
  for (const { url } of seen.sockets) {
    assert.ok(!new URL(url).searchParams.has("token"), `no token= in ${url}`);
    assert.ok(!url.includes(jwt.split(".")[2]), "the JWT is nowhere in the URL");
  }

  // A guest who takes the same name is not marked; the identified user is.
  const guest = await peer(server, { room: "who", name: "Ana" });
  await guest.say("a guest called Ana");
  await sendFromPage(page, "the real Ana");
  await waitForText(page, "the real Ana");
  await waitForText(page, "a guest called Ana");
  const lines = await page.$$eval("#log .line.message", (nodes) => nodes.map((n) => ({
    text: n.querySelector(".text").textContent, from: n.querySelector(".from").textContent,
    user: n.dataset.user ?? null, badge: n.querySelector(".badge .visually-hidden")?.textContent ?? null,
  })));
  assert.deepEqual(lines.find((l) => l.text === "the real Ana"),
    { text: "the real Ana", from: "Ana", user: "u-ana", badge: "identified user u-ana" });
  assert.deepEqual(lines.find((l) => l.text === "a guest called Ana"),
    { text: "a guest called Ana", from: "Ana", user: null, badge: null });
  await page.screenshot({ path: screenshotPath("desktop-identified.png"), fullPage: true });

  await page.selectOption("#lang", "ko");
  assert.match(await page.textContent("#whoami"), /Ana\(으\)로 로그인됨/);
  assert.equal(await page.textContent("#name-hint"), "토큰에 있는 이름");
  await page.selectOption("#lang", "en");

  await page.click("#disconnect");
  await until("disconnected", async () => (await state(page)) === "offline");
  assert.equal(await page.inputValue("#name"), "someone", "the typed name is back");
  assert.equal(await page.evaluate(() => document.querySelector("#name").readOnly), false);
  assert.equal(await page.isVisible("#identity"), false);
  await guest.close();
  await context.close();
});

test("a guest token keeps its own name, and a static token that cannot be a subprotocol goes in ?token=", async () => {
  const { page, context, seen } = await openPage(env.browser, env.withUrl, { room: "guests", name: "bo" });
  assert.equal(await page.evaluate(() => window.__wschat.tokenIn), "subprotocol");
  assert.equal(await page.evaluate(() => document.querySelector("#name").readOnly), false);
  assert.equal(await page.isVisible("#identity"), false);
  assert.ok(!new URL(seen.sockets[0].url).searchParams.has("token"));
  await context.close();

  const odd = await openPage(env.browser, env.withUrl, { room: "guests", name: "odd", token: ODD_TOKEN });
  assert.equal(await odd.page.evaluate(() => window.__wschat.tokenIn), "query");
  assert.equal(new URL(odd.seen.sockets[0].url).searchParams.get("token"), ODD_TOKEN);
  await odd.context.close();
});

test("expiring: the page fetches the token URL and refreshes on the same socket; the shown expiry moves", async () => {
  const server = env.withUrl;
  const jwt = mint({ sub: "u-bo", name: "Bo" }, 4);
  const firstExp = expiryOf(jwt);
  const { page, context, seen } = await openPage(env.browser, server, { room: "renew", token: jwt, connect: false });
  await context.addCookies([{ name: "app_session", value: "s-1", url: server.base }]);
  const calls = await tokenUrl(page, () => mint({ sub: "u-bo", name: "Bo" }, 60));
  await page.click("#connect");
  await waitOnline(page);
  assert.equal(await page.evaluate(() => window.__wschat.tokenUrl), "/token");

  await until("the refresh to be answered", () => page.evaluate(() => window.__wschat.refreshes === 1), 10_000);
  assert.equal(calls.length, 1, "one fetch of the token URL");
  assert.deepEqual(calls[0], { method: "GET", cookie: "app_session=s-1", shown: new Date(firstExp).toISOString() },
    "a GET with the page's cookies, while the first token's expiry was shown");
  assert.ok(seen.sent.some((f) => JSON.parse(f).type === "refresh"), "a refresh frame was sent");
  const moved = await shownExpiry(page);
  assert.ok(Date.parse(moved) > firstExp + 30_000, `the shown expiry moved: ${moved}`);
  assert.equal(await noteKind(page), "", "no warning left once renewed");
  assert.ok((await logTexts(page)).some((l) => /Session renewed until/.test(l)));

  // Past the first token's exp (leeway 0): still the same, open socket.
  await sleep(Math.max(0, firstExp + 1_500 - Date.now()));
  await sendFromPage(page, "still here after the first exp");
  await waitForText(page, "still here after the first exp");
  assert.equal(seen.sockets.length, 1, "no reconnect");
  assert.equal(await page.evaluate(() => window.__wschat.readyState), 1);
  await context.close();
});

test("no token URL: the page says when the session ends; at exp the 4001 close says 'expired' and nothing reconnects", async () => {
  const server = env.withoutUrl;
  const jwt = mint({ sub: "u-cy", name: "Cy" }, 3);
  const { page, context, seen } = await openPage(env.browser, server, { room: "ends", name: "cy-typed", token: jwt });
  assert.equal(await page.evaluate(() => window.__wschat.tokenUrl), null);
  await until("the expiry notice", async () => (await noteKind(page)) === "expiringNoUrl", 10_000);
  const notice = await page.textContent("#session-note");
  const at = await page.evaluate(() => new Date(document.querySelector("#expires").dateTime)
    .toLocaleTimeString("en", { hour: "2-digit", minute: "2-digit", second: "2-digit" }));
  assert.equal(notice, `Your session ends at ${at}. Get a new token and connect again to continue.`);
  assert.equal(await page.getAttribute("#session-note", "role"), "alert");

  await until("the 4001 close", async () => (await state(page)) === "error", 10_000);
  assert.match(await page.textContent("#status"), /Session expired \(4001\)/);
  await sleep(2_000); // asserting an absence: a retry would come within 500 ms
  assert.equal(seen.sockets.length, 1, "no reconnect");
  assert.equal(await page.evaluate(() => window.__wschat.delays.length), 0);
  assert.equal(await page.inputValue("#name"), "cy-typed", "the name field is the user's again");
  assert.equal(await page.evaluate(() => document.querySelector("#name").readOnly), false);
  await context.close();
});

test("a token URL that fails: the page warns the session ends soon, and after 4001 stops without a loop", async () => {
  const jwt = mint({ sub: "u-di" }, 3);
  const { page, context, seen } = await openPage(env.browser, env.withUrl, { room: "fails", token: jwt, connect: false });
  const calls = await tokenUrl(page, () => 503);
  await page.click("#connect");
  await waitOnline(page);
  await until("the failure notice", async () => (await noteKind(page)) === "renewFailed", 10_000);
  assert.match(await page.textContent("#session-note"), /Could not renew your session: it ends soon/);
  await until("the 4001 close", async () => (await state(page)) === "error", 10_000);
  assert.match(await page.textContent("#status"), /Session expired \(4001\)/);
  await sleep(2_000);
  assert.equal(calls.length, 2, "one fetch at the warning, one after 4001");
  assert.equal(seen.sockets.length, 1, "no reconnect without a fresh token");
  await context.close();
});

test("a refused refresh (bad_token), then 4001: one reconnect with a fresh token from the token URL, resuming with since", async () => {
  const server = env.withUrl;
  const jwt = mint({ sub: "u-ed", name: "Ed" }, 5);
  const { page, context, seen } = await openPage(env.browser, server, { room: "again", token: jwt, connect: false });
  // The first fresh token names another user: the server answers bad_token.
  const calls = await tokenUrl(page, (n) => (n === 1 ? mint({ sub: "u-someone-else" }, 60) : mint({ sub: "u-ed", name: "Ed" }, 60)));
  await page.click("#connect");
  await waitOnline(page);
  await sendFromPage(page, "before the expiry");
  await waitForText(page, "before the expiry");
  await until("the refused refresh", async () => (await noteKind(page)) === "renewFailed", 10_000);
  assert.ok((await logTexts(page)).includes("The server refused the new token."));
  assert.equal(await page.textContent("#form-error"), "", "not shown as a message error");

  await until("a second socket", async () => seen.sockets.length === 2, 10_000);
  await waitOnline(page);
  const again = new URL(seen.sockets[1].url);
  assert.ok(!again.searchParams.has("token"));
  assert.ok(again.searchParams.has("since"), `resumes: ${again}`);
  assert.equal(calls.length, 2);
  assert.ok((await logTexts(page)).some((l) => /Session expired \(4001\)/.test(l)));
  assert.ok(Date.parse(await shownExpiry(page)) > Date.now() + 30_000, "the fresh token's expiry");
  assert.equal(await page.inputValue("#name"), "Ed");
  await context.close();
});

test("4003 (disconnected by a moderator): the page says so and does not reconnect", async () => {
  // The server has no moderator API yet: a routed socket plays its part.
  const { page, context } = await openPage(env.browser, env.withUrl, { room: "kick", name: "fy", connect: false });
  let opened = 0;
  await page.routeWebSocket(/\/chat\?/, (ws) => {
    opened += 1;
    ws.send(JSON.stringify({ type: "system", message: "connected as Fy", clientId: "c-1", user: "u-fy", name: "Fy" }));
    ws.send(JSON.stringify({ type: "history", messages: [], epoch: "e-1" }));
    setTimeout(() => ws.close({ code: 4003, reason: "disconnected by a moderator" }), 200);
  });
  await page.click("#connect");
  await until("the 4003 close", async () => (await state(page)) === "error", 10_000);
  assert.equal(await page.textContent("#status"), "Disconnected by a moderator (4003).");
  await sleep(2_000);
  assert.equal(opened, 1, "no reconnect");
  assert.equal(await page.evaluate(() => window.__wschat.delays.length), 0);
  assert.equal(await page.inputValue("#name"), "fy");
  await context.close();
});
