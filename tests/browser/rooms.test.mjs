// rooms.test.mjs — several rooms on one page (PROTOCOL §9): joining from the
// form, messages in the right room only, unread counts, leaving, keyboard-only
// switching, a dropped socket that rejoins every room with since/epoch and no
// duplicates, a join refused and a room taken away by a tokens-file reload
// (`left`, reason `forbidden`), Korean strings, and the phone width.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  fileEnv, messageTexts, openPage, peer, screenshotPath, sendFromPage, until, waitForText, waitOnline,
} from "./harness.mjs";

// A token that may enter `home` and `open-*` only; a reload takes `open-*` away.
const dir = mkdtempSync(join(tmpdir(), "ws-chat-rooms-"));
const tokensFile = join(dir, "tokens.toml");
const limited = (rooms) => `[[tokens]]\ntoken = "limited-token"\nrooms = ${JSON.stringify(rooms)}\n`;
writeFileSync(tokensFile, limited(["home", "open-*"]));
const env = fileEnv({ extraEnv: { CHAT__AUTH__TOKENS_FILE: tokensFile } });
after(() => rmSync(dir, { recursive: true, force: true }));

const roomsOf = (page) => page.evaluate(() => window.__wschat.rooms);
const frames = (seen) => seen.sent.map((f) => { try { return JSON.parse(f); } catch { return null; } }).filter(Boolean);
const count = (list, text) => list.filter((t) => t === text).length;

/** Joins `name` through the form, as a user would, and waits for its history. */
async function joinRoom(page, name) {
  await page.fill("#join-room", name);
  await page.press("#join-room", "Enter");
  await page.waitForFunction((n) => window.__wschat.rooms.some((r) => r.name === n && r.state === "joined"), name);
}

const tab = (page, name) => page.locator(`.room-tab[data-room="${name}"]`);

/** The messages of room `name`, shown by clicking its button. */
async function textsIn(page, name) {
  await tab(page, name).click();
  return messageTexts(page);
}

async function unread(page, name) {
  const badge = page.locator(`.room-tab[data-room="${name}"] .unread`);
  return {
    shown: await badge.isVisible() ? await badge.textContent() : null,
    spoken: await page.locator(`.room-tab[data-room="${name}"] .unread-text`).textContent(),
  };
}

test("one page in three rooms: each message in its room only, unread counts that reset, presence per room, leaving a room", async () => {
  const a = await openPage(env.browser, env.server, { room: "home-a", name: "ana" });
  await joinRoom(a.page, "beta");
  await joinRoom(a.page, "gamma");
  const b = await openPage(env.browser, env.server, { room: "beta", name: "bo" });
  assert.deepEqual((await roomsOf(a.page)).map((r) => [r.name, r.state, r.active]),
    [["home-a", "joined", false], ["beta", "joined", false], ["gamma", "joined", true]], "the query string's room first, the last joined shown");
  assert.equal(await tab(a.page, "gamma").getAttribute("aria-current"), "true");
  assert.equal(await tab(a.page, "beta").getAttribute("aria-current"), null);
  assert.equal(await a.page.getAttribute("#rooms", "aria-label"), "Rooms");
  assert.match(await a.page.textContent("#log-title"), /Messages in gamma/);

  // A message in beta while gamma is shown: not in gamma's log, counted on beta.
  await sendFromPage(b.page, "to beta 1");
  await waitForText(b.page, "to beta 1");
  await until("beta's unread count", async () => (await unread(a.page, "beta")).shown === "1");
  assert.deepEqual(await unread(a.page, "beta"), { shown: "1", spoken: ", 1 unread" });
  assert.deepEqual(await unread(a.page, "home-a"), { shown: null, spoken: "" });
  assert.ok(!(await messageTexts(a.page)).includes("to beta 1"), "gamma's log does not show it");
  assert.match(await tab(a.page, "beta").textContent(), /beta.*1 unread/, "the button's name says it");

  // Shown: the message is there and the count is gone.
  assert.deepEqual(await textsIn(a.page, "beta"), ["to beta 1"]);
  assert.deepEqual(await unread(a.page, "beta"), { shown: null, spoken: "" });
  assert.equal(await tab(a.page, "beta").getAttribute("aria-current"), "true");
  await until("beta's count: ana and bo", async () => (await a.page.textContent("#online")) === "2 online");

  // The input sends to the shown room, named in the frame.
  await sendFromPage(a.page, "from ana to beta");
  await waitForText(b.page, "from ana to beta");
  assert.ok(frames(a.seen).some((f) => f.type === "message" && f.room === "beta" && f.text === "from ana to beta"));
  await tab(a.page, "home-a").click();
  assert.match(await a.page.textContent("#online"), /^1 online$/, "home-a's count");
  await sendFromPage(a.page, "only at home");
  await waitForText(a.page, "only at home");
  await sendFromPage(b.page, "to beta 2");
  await until("beta 2 on a", async () => (await unread(a.page, "beta")).shown === "1");
  await waitForText(b.page, "to beta 2");
  assert.deepEqual(await messageTexts(b.page), ["to beta 1", "from ana to beta", "to beta 2"], "home-a's message never reached beta");
  assert.deepEqual(await textsIn(a.page, "gamma"), [], "nothing reached gamma");
  assert.deepEqual(await textsIn(a.page, "home-a"), ["only at home"]);

  // Leaving: the first room has no leave button; gamma's removes it.
  assert.equal(await a.page.locator('.room[data-state] .room-leave:visible').count(), 2);
  assert.equal(await a.page.locator(".room-leave").first().isHidden(), true, "the query string's room stays");
  await a.page.getByRole("button", { name: "Leave room gamma" }).click();
  await until("gamma gone", async () => (await roomsOf(a.page)).every((r) => r.name !== "gamma"));
  assert.equal(await tab(a.page, "gamma").count(), 0);
  assert.ok(frames(a.seen).some((f) => f.type === "leave" && f.room === "gamma"), "a leave frame was sent");
  const node = await peer(env.server, { room: "gamma", name: "cy" });
  await node.say("after ana left");
  await sendFromPage(b.page, "to beta 3");
  await until("beta 3 on a", async () => (await unread(a.page, "beta")).shown === "2");
  assert.ok(!(await roomsOf(a.page)).some((r) => r.name === "gamma"), "gamma did not come back");
  assert.equal(await a.page.locator("#log .line.message .text", { hasText: "after ana left" }).count(), 0);
  assert.deepEqual(a.seen.errors, []);
  await node.close();
  for (const p of [a, b]) await p.context.close();
});

test("keyboard only: add rooms with Enter, arrows move between rooms, Enter shows one, Delete leaves it; focus stays visible", async () => {
  const { page, context } = await openPage(env.browser, env.server, { room: "k1", name: "kb" });
  await page.focus("#join-room");
  for (const name of ["k2", "k3"]) {
    await page.keyboard.type(name);
    await page.keyboard.press("Enter");
    await page.waitForFunction((n) => window.__wschat.rooms.some((r) => r.name === n && r.state === "joined"), name);
  }
  const focused = () => page.evaluate(() => document.activeElement.dataset.room ?? document.activeElement.id);
  await tab(page, "k1").focus();
  await page.keyboard.press("ArrowRight");
  assert.equal(await focused(), "k2");
  assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), "none", "focus is visible");
  await page.keyboard.press("Enter");
  assert.equal(await tab(page, "k2").getAttribute("aria-current"), "true");
  await page.keyboard.press("End");
  assert.equal(await focused(), "k3");
  await page.keyboard.press("Home");
  assert.equal(await focused(), "k1");
  await page.keyboard.press("ArrowLeft");
  assert.equal(await focused(), "k3", "wraps around");
  await page.keyboard.press("Space");
  assert.equal(await tab(page, "k3").getAttribute("aria-current"), "true");
  // Tab reaches the leave button of the focused room, with a name.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute("aria-label")), "Leave room k3");
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.press("Delete");
  await until("k3 left", async () => (await roomsOf(page)).map((r) => r.name).join() === "k1,k2");
  assert.equal(await focused(), "k2", "focus moves to the room now shown");
  assert.equal(await tab(page, "k2").getAttribute("aria-current"), "true");
  await page.keyboard.press("Delete"); // k1 is not focused; k2 is, and goes
  await until("k2 left", async () => (await roomsOf(page)).map((r) => r.name).join() === "k1");
  assert.equal(await focused(), "k1");
  await page.keyboard.press("Delete");
  assert.deepEqual((await roomsOf(page)).map((r) => r.name), ["k1"], "the query string's room is not left");
  await page.focus("#message");
  await page.keyboard.type("typed with keys in k1");
  await page.keyboard.press("Enter");
  await waitForText(page, "typed with keys in k1");
  await context.close();
});

test("a dropped socket: the page rejoins every room with since and epoch, and shows each message once", async () => {
  const { page, context, seen } = await openPage(env.browser, env.server, { room: "r1", name: "ana" });
  await joinRoom(page, "r2");
  await joinRoom(page, "r3");
  const peers = {};
  for (const r of ["r1", "r2", "r3"]) {
    peers[r] = await peer(env.server, { room: r, name: `p-${r}` });
    await peers[r].say(`before ${r} a`);
    await peers[r].say(`before ${r} b`);
  }
  await until("every room's messages", async () => (await roomsOf(page)).every((r) => r.lastSeq === 2));
  const before = Object.fromEntries((await roomsOf(page)).map((r) => [r.name, r]));
  const histories = await page.evaluate(() => window.__wschat.histories);

  await page.evaluate(() => window.__wschat.drop());
  for (const r of ["r1", "r2", "r3"]) await peers[r].say(`during ${r}`);
  await until("a second socket", async () => seen.sockets.length === 2);
  await waitOnline(page);
  await page.waitForFunction((n) => window.__wschat.histories >= n + 3
    && window.__wschat.rooms.every((r) => r.state === "joined"), histories);

  const url = new URL(seen.sockets[1].url);
  assert.equal(url.searchParams.get("room"), "r1", "the first room is the query string's");
  assert.equal(url.searchParams.get("since"), String(before.r1.lastSeq));
  assert.equal(url.searchParams.get("epoch"), before.r1.epoch);
  for (const r of ["r2", "r3"]) {
    const joins = frames(seen).filter((f) => f.type === "join" && f.room === r);
    assert.equal(joins.length, 2, `${r}: joined once per socket`);
    assert.deepEqual(joins[1], { type: "join", room: r, since: before[r].lastSeq, epoch: before[r].epoch }, `${r} resumes`);
  }
  await until("the messages sent during the drop", async () => (await roomsOf(page)).every((r) => r.lastSeq === 3));
  for (const r of ["r1", "r2", "r3"]) {
    const texts = await textsIn(page, r);
    for (const text of [`before ${r} a`, `before ${r} b`, `during ${r}`]) {
      assert.equal(count(texts, text), 1, `${r}: ${text} exactly once: ${JSON.stringify(texts)}`);
    }
    assert.equal(texts.length, 3, `${r} holds its own messages only: ${JSON.stringify(texts)}`);
    assert.equal(await page.locator("#log .line.divider").count(), 0, `${r}: the same epoch, no history reset`);
  }
  // After the rejoin the page still sends to the right room.
  await sendFromPage(page, "back in r3");
  await until("r3's peer to get it", async () => peers.r3.texts().includes("back in r3"));
  assert.ok(!peers.r1.texts().includes("back in r3") && !peers.r2.texts().includes("back in r3"));
  for (const p of Object.values(peers)) await p.close();
  await context.close();
});

test("a join the token does not allow is refused by the room list; a room taken away by a reload is marked 'no longer allowed' and the socket stays", async () => {
  const { page, context, seen } = await openPage(env.browser, env.server, { room: "home", name: "lim", token: "limited-token" });
  await joinRoom(page, "open-1");
  await page.fill("#join-room", "closed");
  await page.press("#join-room", "Enter");
  await page.waitForFunction(() => document.querySelector("#join-error").dataset.code === "forbidden");
  assert.equal(await page.textContent("#join-error"), "Could not join closed: this token is not allowed there.");
  await page.selectOption("#lang", "ko");
  assert.equal(await page.textContent("#join-error"), "closed 방에 참여하지 못했습니다: 이 토큰으로는 들어갈 수 없는 방입니다.");
  await page.selectOption("#lang", "en");
  assert.equal(await page.getAttribute("#join-error", "role"), "alert");
  assert.deepEqual((await roomsOf(page)).map((r) => r.name), ["home", "open-1"], "the refused room is not kept");
  assert.equal(await tab(page, "open-1").getAttribute("aria-current"), "true", "back to the room shown before");
  // A bad name never reaches the server.
  await page.fill("#join-room", "no spaces");
  await page.press("#join-room", "Enter");
  assert.equal(await page.getAttribute("#join-error", "data-code"), "bad_room_local");

  writeFileSync(tokensFile, limited(["home"])); // the server polls the file
  try {
    await page.waitForFunction(() => window.__wschat.rooms.some((r) => r.name === "open-1" && r.state === "gone"), null, { timeout: 10_000 });
    assert.equal(await page.getAttribute('.room[data-state="gone"] .room-tab', "data-room"), "open-1");
    assert.match(await tab(page, "open-1").textContent(), /no longer allowed/);
    const lines = await page.$$eval("#log .line.error", (n) => n.map((l) => l.textContent));
    assert.ok(lines.includes("No longer allowed in this room: this token does not grant it any more."), JSON.stringify(lines));
    await sendFromPage(page, "still here?");
    assert.equal(await page.getAttribute("#form-error", "data-code"), "not_in_room_local");
    assert.equal(seen.sockets.length, 1, "the connection stays open");
    assert.equal(await page.evaluate(() => window.__wschat.readyState), 1);
    await tab(page, "home").click();
    await sendFromPage(page, "home still works");
    await waitForText(page, "home still works");
    const leaves = () => frames(seen).filter((f) => f.type === "leave").length;
    await page.getByRole("button", { name: "Leave room open-1" }).click();
    assert.deepEqual((await roomsOf(page)).map((r) => r.name), ["home"]);
    assert.equal(leaves(), 0, "no leave for a room the server already took");
  } finally {
    writeFileSync(tokensFile, limited(["home", "open-*"]));
  }
  await context.close();
});

test("in Korean, at 360 px: the room list, its buttons and counts speak Korean, and nothing scrolls sideways", async () => {
  const viewport = { width: 360, height: 740 };
  const { page, context } = await openPage(env.browser, env.server, { room: "ko-home", name: "ana", locale: "ko-KR", viewport });
  assert.equal(await page.textContent("#join"), "참여");
  assert.equal(await page.getAttribute("#join-room", "placeholder"), "방 추가");
  assert.equal(await page.getAttribute("#rooms", "aria-label"), "방 목록");
  await joinRoom(page, "ko-second-room-with-a-long-name");
  await joinRoom(page, "ko-third");
  const bob = await peer(env.server, { room: "ko-second-room-with-a-long-name", name: "bob" });
  await bob.say("안녕하세요 👋🏽");
  await until("the unread count", async () => (await unread(page, "ko-second-room-with-a-long-name")).shown === "1");
  assert.equal((await unread(page, "ko-second-room-with-a-long-name")).spoken, ", 읽지 않은 메시지 1개");
  assert.equal(await page.getAttribute('.room-tab[data-room="ko-third"] + .room-leave', "aria-label"), "ko-third 방에서 나가기");
  assert.equal(await page.textContent("#log-title"), "ko-third 방의 메시지");
  await page.fill("#join-room", "x y");
  await page.press("#join-room", "Enter");
  assert.equal(await page.textContent("#join-error"), "방 이름은 영문, 숫자, - 와 _ 로 된 1~32자입니다.");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= viewport.width, `no horizontal scroll (${width}px)`);
  await page.screenshot({ path: screenshotPath("phone-360x740-rooms-ko.png"), fullPage: true });
  await page.selectOption("#lang", "en");
  assert.equal(await page.getAttribute('.room-tab[data-room="ko-third"] + .room-leave', "aria-label"), "Leave room ko-third");
  assert.equal(await page.textContent("#join-error"), "A room name is 1 to 32 letters, digits, - and _.", "the alert follows the switch");
  assert.equal((await unread(page, "ko-second-room-with-a-long-name")).spoken, ", 1 unread");
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: screenshotPath("desktop-rooms.png") });
  await bob.close();
  await context.close();
});
