// reconnect.test.mjs — the page across a server restart (backoff, resume with
// since/epoch, no duplicates) and the bounded offline queue.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  fileEnv, messageTexts, openPage, peer, screenshotPath, sendFromPage, until, waitForText, waitOnline,
} from "./harness.mjs";

const env = fileEnv();

const count = (list, text) => list.filter((t) => t === text).length;

test("after a server restart the page backs off with growing full-jitter delays capped at 10 s, resumes with since and epoch, and shows every message once", { timeout: 90_000 }, async () => {
  const { page, context, seen } = await openPage(env.browser, env.server, { room: "restart", name: "ana" });
  const bob = await peer(env.server, { room: "restart", name: "bob" });
  await bob.say("before 1");
  await bob.say("before 2");
  await waitForText(page, "before 2");
  const before = await page.evaluate(() => window.__wschat.resume);
  assert.ok(Number.isInteger(before.lastSeq) && typeof before.epoch === "string", `the server sent seq and epoch (PROTOCOL §2): ${JSON.stringify(before)}`);
  await bob.close();

  const stoppedAt = Date.now();
  await env.server.stop();
  await page.waitForFunction(() => document.querySelector("#status").dataset.state === "waiting");
  const statusText = await page.textContent("#status");
  assert.match(statusText, /restarting \(1001\)|Connection lost|unreachable/i, `status says why: ${statusText}`);
  assert.equal(await page.locator("#online").isHidden(), true, "no stale online count");

  // Typed during the outage: queued, and the page says so.
  await sendFromPage(page, "typed while down");
  assert.match(await page.textContent("#form-note"), /1 of 20 queued/);
  assert.deepEqual(await page.$$eval("#queue li", (li) => li.map((n) => n.textContent)), ["typed while down"]);

  // Let the delays grow to the cap, then restart while the next attempt is
  // at least 3 s away, so that a message is sent before the page is back.
  await page.waitForFunction(() => {
    const d = window.__wschat.delays;
    return d.length >= 6 && d.at(-1).cap === 10_000 && window.__wschat.nextAttemptAt - Date.now() > 3_000;
  }, null, { timeout: 60_000, polling: 50 });
  const socketsBefore = seen.sockets.length;
  env.server = await env.server.restart();
  const carol = await peer(env.server, { room: "restart", name: "carol" });
  await carol.say("while you were away");
  assert.equal(seen.sockets.length, socketsBefore, "the page had not reconnected before the message was sent");

  await waitForText(page, "typed while down", 20_000);
  await waitForText(page, "while you were away");
  await waitOnline(page);
  const resumeUrl = new URL(seen.sockets.at(-1).url);
  assert.equal(resumeUrl.pathname, "/chat");
  assert.equal(resumeUrl.searchParams.get("since"), String(before.lastSeq), "resumes from the last seq seen");
  assert.equal(resumeUrl.searchParams.get("epoch"), before.epoch, "sends the epoch of that seq");

  const texts = await messageTexts(page);
  for (const t of ["before 1", "before 2", "while you were away", "typed while down"]) {
    assert.equal(count(texts, t), 1, `${t} is on screen exactly once: ${JSON.stringify(texts)}`);
  }
  assert.ok(texts.indexOf("while you were away") < texts.indexOf("typed while down"), "history first, then the queued message");
  const after = await page.evaluate(() => window.__wschat.resume);
  // The in-memory broker lost the room's history: a new epoch, seq from 1.
  assert.notEqual(after.epoch, before.epoch, "a restarted in-memory server gives the room a new epoch");
  assert.equal(await page.locator("#log .line.divider").count(), 1, "one 'history reset' divider");
  assert.match(await page.textContent("#log .line.divider"), /history reset/i);
  const divider = await page.$$eval("#log .line", (lines) => lines.findIndex((l) => l.classList.contains("divider")));
  const away = await page.$$eval("#log .line", (lines) => lines.findIndex((l) => l.textContent.includes("while you were away")));
  assert.ok(divider < away, "the new history is below the divider");
  assert.equal(await page.locator("#queue").isHidden(), true, "the queue is empty again");
  await until("carol to get the queued message", async () => carol.texts().includes("typed while down"));
  await page.screenshot({ path: screenshotPath("desktop-after-restart.png") });

  // The observed delays: attempt n waits random(0, min(10 s, 500 ms * 2^n)).
  const delays = await page.evaluate(() => window.__wschat.delays);
  delays.forEach((d, i) => {
    assert.equal(d.attempt, i, "attempts count up from 0 after the drop");
    assert.equal(d.cap, Math.min(10_000, 500 * 2 ** i), `cap of attempt ${i}`);
    assert.ok(d.delay >= 0 && d.delay <= d.cap, `delay ${d.delay} within [0, ${d.cap}]`);
  });
  assert.ok(delays.some((d) => d.cap === 10_000), "the cap was reached");
  assert.ok(new Set(delays.map((d) => (d.delay / d.cap).toFixed(3))).size > 1, "delays are jittered, not a fixed fraction of the cap");
  const retries = seen.sockets.filter((s) => s.at >= stoppedAt);
  const gaps = retries.slice(1).map((s, i) => s.at - retries[i].at);
  assert.ok(gaps.every((g) => g <= 10_000 + 1_500), `no wait between attempts much over 10 s: ${gaps}`);
  await carol.close();
  await context.close();
});

test("messages typed while disconnected are queued up to 20, the 21st is refused, and all are sent in order on connect", async () => {
  const { page, context, seen } = await openPage(env.browser, env.server, { room: "queue", name: "ana" });
  const bob = await peer(env.server, { room: "queue", name: "bob" });
  await page.click("#disconnect");
  await page.waitForFunction(() => document.querySelector("#status").dataset.state === "offline");
  assert.match(await page.textContent("#status"), /disconnected/i);
  const sockets = seen.sockets.length;

  for (let i = 1; i <= 20; i += 1) await sendFromPage(page, `queued ${i}`);
  assert.match(await page.textContent("#form-note"), /20 of 20 queued/);
  await sendFromPage(page, "one too many");
  assert.match(await page.textContent("#form-error"), /queue full/i);
  assert.equal(await page.inputValue("#message"), "one too many", "the refused text stays in the input");
  assert.equal(await page.locator("#queue li").count(), 20);
  assert.equal(seen.sockets.length, sockets, "no reconnect after a deliberate disconnect");
  assert.equal(await page.evaluate(() => window.__wschat.nextAttemptAt), 0, "no retry scheduled");

  await page.click("#connect");
  const expected = Array.from({ length: 20 }, (_, i) => `queued ${i + 1}`);
  await waitForText(page, "queued 20");
  const onScreen = (await messageTexts(page)).filter((t) => t.startsWith("queued "));
  assert.deepEqual(onScreen, expected, "all 20 arrive once, in order");
  await until("bob to get all 20", async () => bob.texts().filter((t) => t.startsWith("queued ")).length === 20);
  assert.deepEqual(bob.texts().filter((t) => t.startsWith("queued ")), expected);
  assert.equal(await page.textContent("#form-note"), "", "the queued note is gone");
  assert.ok(!(await page.textContent("#form-error")).match(/rate|too many/i), "the flush stayed within the rate limit");
  await bob.close();
  await context.close();
});
