// ui.test.mjs — language, token privacy, keyboard-only use, the strict CSP,
// and screenshots at desktop and phone widths (artifacts/screenshots/).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  TOKEN, fileEnv, openPage, peer, screenshotPath, sendFromPage, waitForText, waitOnline,
} from "./harness.mjs";

const env = fileEnv();

test("the language control switches the UI to Korean and back; a Korean browser starts in Korean", async () => {
  const en = await openPage(env.browser, env.server, { locale: "en-US", connect: false });
  assert.equal(await en.page.textContent("#connect"), "Connect");
  await en.page.selectOption("#lang", "ko");
  assert.equal(await en.page.textContent("#connect"), "연결");
  assert.equal(await en.page.textContent("#disconnect"), "끊기");
  assert.equal(await en.page.textContent("label[for=message]"), "메시지");
  assert.equal(await en.page.getAttribute("html", "lang"), "ko");
  await en.page.click("#connect");
  await waitOnline(en.page);
  assert.match(await en.page.textContent("#status"), /연결됨/);
  await en.page.selectOption("#lang", "en");
  assert.match(await en.page.textContent("#status"), /Connected as/, "the status follows the switch");
  await en.context.close();

  const ko = await openPage(env.browser, env.server, { locale: "ko-KR", connect: false });
  assert.equal(await ko.page.textContent("#connect"), "연결");
  assert.equal(await ko.page.inputValue("#lang"), "ko");
  await ko.context.close();
});

test("the token is never in the URL bar, the WebSocket URL nor localStorage unless 'remember token' is ticked, and unticking removes it", async () => {
  const { page, context, seen } = await openPage(env.browser, env.server, { room: "privacy", name: "ana" });
  const storage = () => page.evaluate(() => Object.fromEntries(Object.entries(localStorage)));
  assert.ok(!page.url().includes(TOKEN), "not in location.href");
  assert.ok(seen.sockets.every((s) => !s.url.includes(TOKEN)), "not in the WebSocket URL: a subprotocol carries it");
  assert.ok(!(await page.evaluate(() => location.href)).includes(TOKEN));
  assert.ok(!JSON.stringify(await storage()).includes(TOKEN), "not in localStorage by default");
  assert.equal(await page.getAttribute("#token", "type"), "password");

  await page.check("#remember");
  assert.ok(JSON.stringify(await storage()).includes(TOKEN), "ticked: stored");
  await page.reload();
  assert.equal(await page.inputValue("#token"), TOKEN, "restored after a reload");
  await waitOnline(page); // a remembered token connects on load, like the reference page
  assert.ok(!page.url().includes(TOKEN));

  await page.uncheck("#remember");
  assert.ok(!JSON.stringify(await storage()).includes(TOKEN), "unticked: removed");
  await page.reload();
  assert.equal(await page.inputValue("#token"), "", "not restored once forgotten");
  assert.equal(await page.inputValue("#room"), "privacy", "the room is remembered");
  assert.equal(await page.inputValue("#name"), "ana", "the name is remembered");
  await context.close();
});

test("the page is usable with the keyboard alone: sensible tab order, visible focus, Enter connects and sends", async () => {
  const { page, context } = await openPage(env.browser, env.server, { room: "keys", name: "kb", connect: false });
  await page.focus("#lang");
  const order = [];
  for (let i = 0; i < 12; i += 1) {
    order.push(await page.evaluate(() => document.activeElement.id || document.activeElement.textContent.trim()));
    await page.keyboard.press("Tab");
  }
  // Before connecting the room list is empty: only the form that adds a room.
  const expected = ["lang", "room", "name", "token", "remember", "connect", "disconnect", "join-room", "join", "log", "who", "message"];
  assert.deepEqual(order.slice(0, expected.length), expected, `tab order: ${order}`);
  await page.focus("#token");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, "none", "focus is visible");
  await page.keyboard.press("Enter"); // submits the connection form
  await waitOnline(page);
  await page.focus("#message");
  await page.keyboard.type("typed with keys");
  await page.keyboard.press("Enter");
  await waitForText(page, "typed with keys");
  for (const id of ["room", "name", "token", "message", "join-room"]) {
    assert.ok(await page.locator(`label[for=${id}]`).count() === 1, `#${id} has a label`);
  }
  assert.equal(await page.getAttribute("#log", "aria-live"), "polite");
  assert.equal(await page.getAttribute("#status", "role"), "status");
  await context.close();
});

test("the page runs under the server's strict CSP with no inline code and no outside requests", async () => {
  const { page, context, seen } = await openPage(env.browser, env.server, { room: "csp" });
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  const res = await page.reload();
  await page.fill("#token", TOKEN);
  await page.click("#connect");
  await waitOnline(page);
  const csp = res.headers()["content-security-policy"] ?? "";
  assert.match(csp, /script-src 'self'/, `CSP header: ${csp}`);
  assert.equal(await page.locator("script:not([src]), style, [style]").count(), 0, "no inline script or style");
  const inlineHandlers = await page.evaluate(() => [...document.querySelectorAll("*")]
    .flatMap((e) => [...e.attributes].filter((a) => a.name.startsWith("on")).map((a) => a.name)));
  assert.deepEqual(inlineHandlers, []);
  assert.ok(requests.every((u) => u.startsWith(env.server.base) || u.startsWith(`ws://127.0.0.1:${env.server.port}/`)), `only same-origin requests: ${requests}`);
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.console.filter((m) => /Content Security Policy/i.test(m)), [], "no CSP violations");
  await context.close();
});

async function fillRoom(page, bob) {
  await bob.say("Hi! Is the deploy done?");
  await sendFromPage(page, "Yes, rolled out to all replicas 🚀");
  await bob.say("안녕하세요 👋🏽 🇰🇷 — 한국어도 잘 보여요");
  await waitForText(page, "안녕하세요 👋🏽 🇰🇷 — 한국어도 잘 보여요");
  await page.fill("#message", "A draft with a counter");
}

test("screenshots: desktop 1280×800, phone 360×740 and phone in Korean, with no horizontal scrolling", async () => {
  const shots = [
    { file: "desktop-1280x800.png", viewport: { width: 1280, height: 800 }, locale: "en-US", room: "shots-en" },
    { file: "phone-360x740.png", viewport: { width: 360, height: 740 }, locale: "en-US", room: "shots-phone" },
    { file: "phone-360x740-ko.png", viewport: { width: 360, height: 740 }, locale: "ko-KR", room: "shots-ko" },
  ];
  for (const s of shots) {
    const bob = await peer(env.server, { room: s.room, name: "bob" });
    const { page, context } = await openPage(env.browser, env.server, { ...s, name: "ana" });
    await fillRoom(page, bob);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= s.viewport.width, `${s.file}: no horizontal scroll (${width}px)`);
    await page.screenshot({ path: screenshotPath(s.file), fullPage: true });
    await bob.close();
    await context.close();
  }
  // One with the offline queue and an inline error showing.
  const { page, context } = await openPage(env.browser, env.server, { room: "shots-queue", name: "ana", viewport: { width: 360, height: 740 } });
  await page.click("#disconnect");
  await sendFromPage(page, "written while offline");
  await page.fill("#message", "x".repeat(501));
  await page.press("#message", "Enter");
  await page.screenshot({ path: screenshotPath("phone-360x740-offline-queue.png"), fullPage: true });
  await context.close();
});
