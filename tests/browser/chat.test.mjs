// chat.test.mjs — messages between real pages: rooms, order, text safety,
// Unicode round trips, and server errors shown next to the input.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  fileEnv, messageTexts, openPage, peer, sendFromPage, until, waitForText,
} from "./harness.mjs";

const env = fileEnv();

test("two pages in one room see each other's messages in the same order; a page in another room sees neither", async () => {
  const a = await openPage(env.browser, env.server, { room: "alpha", name: "ana" });
  const b = await openPage(env.browser, env.server, { room: "alpha", name: "bo" });
  const c = await openPage(env.browser, env.server, { room: "beta", name: "cy" });
  const sent = [];
  for (let i = 1; i <= 3; i += 1) {
    await sendFromPage(a.page, `ana ${i}`); sent.push(`ana ${i}`);
    await sendFromPage(b.page, `bo ${i}`); sent.push(`bo ${i}`);
  }
  for (const text of sent) {
    await waitForText(a.page, text);
    await waitForText(b.page, text);
  }
  const onA = await messageTexts(a.page);
  const onB = await messageTexts(b.page);
  assert.deepEqual(onA, onB, "both pages show the room in one order");
  assert.deepEqual([...onA].sort(), [...sent].sort(), "each message exactly once");
  for (const who of ["ana", "bo"]) {
    const mine = onA.filter((t) => t.startsWith(who));
    assert.deepEqual(mine, [1, 2, 3].map((i) => `${who} ${i}`), `${who}'s messages keep their order`);
  }
  // The other room: its own message arrives, the alpha messages never do.
  await sendFromPage(c.page, "only beta");
  await waitForText(c.page, "only beta");
  await sendFromPage(a.page, "after beta");
  await waitForText(b.page, "after beta");
  assert.deepEqual(await messageTexts(c.page), ["only beta"]);
  assert.ok(!(await messageTexts(a.page)).includes("only beta"));
  assert.ok(!(await messageTexts(b.page)).includes("only beta"));
  const online = await a.page.textContent("#online");
  assert.match(online, /2 online/, "presence counts the two alpha pages");
  for (const p of [a, b, c]) await p.context.close();
});

test("a message of <img src=x onerror=alert(1)> is shown as text and runs no script", async () => {
  const a = await openPage(env.browser, env.server, { room: "xss", name: "ana" });
  const b = await openPage(env.browser, env.server, { room: "xss", name: "bo" });
  const evil = "<img src=x onerror=alert(1)>";
  const evilName = "<b>x</b>";
  await sendFromPage(a.page, evil);
  await waitForText(b.page, evil);
  const c = await openPage(env.browser, env.server, { room: "xss", name: evilName });
  await waitForText(c.page, evil); // from history
  for (const p of [a, b, c]) {
    assert.equal(await p.page.locator("#log img, #log b, #log script").count(), 0, "no element made from user text");
    assert.deepEqual(p.seen.dialogs, [], "no alert ran");
    assert.deepEqual(p.seen.errors, [], "no page errors");
  }
  const shown = await b.page.locator("#log .line.message .text").last().textContent();
  assert.equal(shown, evil);
  for (const p of [a, b, c]) await p.context.close();
});

test("Korean and emoji text round-trips intact between pages, a plain client and history", async () => {
  const text = "안녕하세요 👋🏽 🇰🇷";
  const a = await openPage(env.browser, env.server, { room: "unicode", name: "ana" });
  const b = await openPage(env.browser, env.server, { room: "unicode", name: "bo" });
  const node = await peer(env.server, { room: "unicode", name: "node" });
  await sendFromPage(a.page, text);
  await waitForText(b.page, text);
  await until("the plain client to receive the text", async () => node.texts().includes(text));
  await node.say("노드에서 보낸 메시지 🚀");
  await waitForText(a.page, "노드에서 보낸 메시지 🚀");
  const late = await openPage(env.browser, env.server, { room: "unicode", name: "late" });
  await waitForText(late.page, text);
  assert.deepEqual(await messageTexts(late.page), [text, "노드에서 보낸 메시지 🚀"]);
  // 300 emoji: 600 UTF-16 units but 300 characters, so not too long.
  const wide = "👋".repeat(300);
  await a.page.fill("#message", wide);
  assert.equal(await a.page.textContent("#counter"), "300/500");
  await a.page.press("#message", "Enter");
  await waitForText(b.page, wide);
  await node.close();
  for (const p of [a, b, late]) await p.context.close();
});

/** The inline alert sits in the message form, right under the input. */
async function assertErrorByInput(page, code) {
  const error = page.locator("#form #form-error");
  await page.waitForFunction((c) => document.querySelector("#form-error").dataset.code === c
    && document.querySelector("#form-error").textContent.trim() !== "", code);
  assert.equal(await error.getAttribute("role"), "alert");
  assert.ok(await error.isVisible(), "the alert is visible");
  const input = await page.locator("#message").boundingBox();
  const box = await error.boundingBox();
  assert.ok(box.y >= input.y + input.height - 1 && box.y - (input.y + input.height) < 40, "the alert is right under the input");
  return error.textContent();
}

test("over-rate messages show a rate_limited alert next to the input, not only in the log", async () => {
  const a = await openPage(env.browser, env.server, { room: "rate", name: "ana" });
  // 30 sends through the form in one task: over the burst of 20.
  await a.page.evaluate(() => {
    const form = document.querySelector("#form");
    const input = document.querySelector("#message");
    for (let i = 1; i <= 30; i += 1) { input.value = `burst ${i}`; form.requestSubmit(); }
  });
  const text = await assertErrorByInput(a.page, "rate_limited");
  assert.match(text, /too many messages/i);
  assert.ok(await a.page.locator("#log .line.error").count() > 0, "also noted in the log");
  await waitForText(a.page, "burst 1");
  assert.equal(await a.page.locator("#status").getAttribute("data-state"), "online", "the connection stays open");
  await a.context.close();
});

test("a too-long message is refused next to the input, by the page and by the server", async () => {
  const a = await openPage(env.browser, env.server, { room: "long", name: "ana" });
  // Client side: 501 characters after trimming are not sent at all.
  await a.page.fill("#message", `  ${"가".repeat(501)}  `);
  assert.equal(await a.page.textContent("#counter"), "501/500");
  assert.equal(await a.page.getAttribute("#message", "aria-invalid"), "true");
  await a.page.press("#message", "Enter");
  const local = await assertErrorByInput(a.page, "too_long_local");
  assert.match(local, /500/);
  assert.equal((await a.page.inputValue("#message")).trim().length, 501, "the text stays for editing");
  assert.ok(!a.seen.sent.some((f) => f.includes("가가가")), "nothing was sent");
  // Typing clears the alert.
  await a.page.fill("#message", "ok now");
  assert.equal(await a.page.textContent("#form-error"), "");
  // Server side: the same limit, reported by the server, shown in the same place.
  await a.page.evaluate(() => window.__wschat.sendUnchecked("x".repeat(501)));
  const remote = await assertErrorByInput(a.page, "too_large");
  assert.match(remote, /too long/i);
  await a.context.close();
});

test("a message with newlines is one message on screen: both lines inside one bordered box", async () => {
  const a = await openPage(env.browser, env.server, { room: "lines", name: "ana" });
  const node = await peer(env.server, { room: "lines", name: "bo" });
  // A second line dressed up as another message: a time, a name, a text.
  const text = "a\nb\n10:42 admin: send me your token";
  await node.say(text);
  await waitForText(a.page, text);
  const shown = await a.page.$$eval("#log .line.message", (lines) => lines.map((line) => {
    const t = line.querySelector(".text");
    const style = getComputedStyle(t);
    const box = t.getBoundingClientRect();
    return {
      text: t.textContent, rendered: t.innerText, from: line.querySelector(".from").textContent,
      whiteSpace: style.whiteSpace, border: parseFloat(style.borderTopWidth), lineHeight: parseFloat(style.lineHeight),
      height: box.height,
    };
  }));
  assert.equal(shown.length, 1, "one message element");
  const [m] = shown;
  assert.equal(m.from, "bo");
  assert.equal(m.text, text, "every line is in that one element");
  assert.equal(m.rendered, text, "and rendered on its own line (innerText keeps the breaks)");
  assert.equal(m.whiteSpace, "pre-wrap");
  assert.ok(m.border >= 1, "the text has a visible border around all of its lines");
  assert.ok(m.height >= 3 * m.lineHeight, `three lines tall: ${m.height} px for line height ${m.lineHeight}`);
  await node.close();
  await a.context.close();
});
