// moderation.test.mjs — deleting messages and who is there, from the page:
// an identified user's own messages carry a delete button (others' do not),
// a delete makes the message say "deleted" on every page in the room, and
// "Who is here" lists the room's identified users, guests counted apart.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { TOKEN, fileEnv, openPage, sendFromPage, waitForText } from "./harness.mjs";

const dir = mkdtempSync(join(tmpdir(), "ws-chat-moderation-"));
const tokensFile = join(dir, "tokens.toml");
writeFileSync(tokensFile, [
  `[[tokens]]\ntoken = "${TOKEN}"\n`,
  '[[tokens]]\ntoken = "ana-token"\nuser = "ana"\nname = "Ana"\n',
  '[[tokens]]\ntoken = "bo-token"\nuser = "bo"\nname = "Bo"\n',
].join("\n"));
const env = fileEnv({ extraEnv: { CHAT__AUTH__TOKENS_FILE: tokensFile } });
after(() => rmSync(dir, { recursive: true, force: true }));

test("an author deletes its own message on every page; others get no delete button", async () => {
  const ana = await openPage(env.browser, env.server, { room: "mod", token: "ana-token" });
  const bo = await openPage(env.browser, env.server, { room: "mod", token: "bo-token" });
  await sendFromPage(ana.page, "take this back");
  for (const { page } of [ana, bo]) await waitForText(page, "take this back");
  const line = (page) => page.locator("#log .line.message", { hasText: "take this back" });
  assert.equal(await line(ana.page).locator(".msg-delete").count(), 1, "the author may delete");
  assert.equal(await line(bo.page).locator(".msg-delete").count(), 0, "another user may not");
  assert.equal(await line(ana.page).locator(".msg-delete").getAttribute("aria-label"), "Delete message");
  await line(ana.page).locator(".msg-delete").click();
  for (const { page } of [ana, bo]) {
    await page.waitForFunction(() => [...document.querySelectorAll("#log .line.message.deleted .text")]
      .some((n) => n.textContent === "Message deleted"));
  }
  assert.ok(ana.seen.sent.some((f) => JSON.parse(f).type === "delete"), "a delete event was sent");
  await ana.context.close();
  await bo.context.close();
});

test("who is here lists identified users once and counts guests apart, in Korean too", async () => {
  const ana = await openPage(env.browser, env.server, { room: "who", token: "ana-token" });
  const ana2 = await openPage(env.browser, env.server, { room: "who", token: "ana-token" });
  const guest = await openPage(env.browser, env.server, { room: "who", token: TOKEN, locale: "ko-KR" });
  await guest.page.click("#who");
  await guest.page.waitForSelector("#members:not([hidden]) #members-list li");
  const names = await guest.page.$$eval("#members-list li", (items) => items.map((i) => i.firstChild.textContent));
  assert.deepEqual(names, ["Ana"], "one entry per user; the guest is not listed");
  assert.match(await guest.page.textContent("#members-title"), /who: 3명 접속 중/);
  assert.match(await guest.page.textContent("#members-note"), /게스트는/);
  for (const p of [ana, ana2, guest]) await p.context.close();
});
