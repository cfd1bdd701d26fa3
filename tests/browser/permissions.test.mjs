// permissions.test.mjs — what a token may do, seen from the page: a read-only
// token's messages are refused next to the input, and a token revoked by a
// tokens-file reload closes the page's socket with 1008 and is not retried.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, test } from "node:test";
import { fileEnv, openPage, sendFromPage } from "./harness.mjs";

const dir = mkdtempSync(join(tmpdir(), "ws-chat-tokens-"));
const tokensFile = join(dir, "tokens.toml");
const grants = (withDoomed) => [
  '[[tokens]]\ntoken = "reader-token"\nread_only = true\n',
  withDoomed ? '[[tokens]]\ntoken = "doomed-token"\n' : "",
].join("\n");

writeFileSync(tokensFile, grants(true));
const env = fileEnv({ extraEnv: { CHAT__AUTH__TOKENS_FILE: tokensFile } });
after(() => rmSync(dir, { recursive: true, force: true }));

test("a read-only token's message gets a 'forbidden' alert next to the input", async () => {
  const { page, context } = await openPage(env.browser, env.server, { room: "ro", token: "reader-token" });
  await sendFromPage(page, "may I speak?");
  await page.waitForFunction(() => document.querySelector("#form-error").dataset.code === "forbidden");
  assert.match(await page.textContent("#form-error"), /only read/i);
  assert.equal(await page.locator("#log .line.message").count(), 0, "nothing was posted");
  await context.close();
});

test("a token revoked while connected closes with 1008: the page says so and does not reconnect", async () => {
  const { page, context, seen } = await openPage(env.browser, env.server, { room: "revoke", token: "doomed-token" });
  writeFileSync(tokensFile, grants(false)); // the server polls the file and revokes
  await page.waitForFunction(() => document.querySelector("#status").dataset.state === "error", null, { timeout: 10_000 });
  assert.match(await page.textContent("#status"), /revoked.*1008/i);
  await sleep(2_000); // asserting an absence: the first retry would come within 500 ms
  assert.equal(seen.sockets.length, 1, "no reconnect attempt");
  assert.equal(await page.evaluate(() => window.__wschat.delays.length), 0);
  await context.close();
});
