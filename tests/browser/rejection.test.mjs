// rejection.test.mjs — refused upgrades (bad token, bad Origin) are reported
// once and never retried in a loop; a server that is down is retried.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { TOKEN, freePort, fileEnv, openPage, startServer, waitOnline } from "./harness.mjs";

const env = fileEnv();

// The longest first backoff is 500 ms: a page that retried would have made a
// second attempt within this window. Asserting an absence needs a wait.
const NO_RETRY_WINDOW_MS = 2_000;

async function assertRejectedOnce(page, seen) {
  await page.waitForFunction(() => document.querySelector("#status").dataset.state === "error");
  const status = await page.textContent("#status");
  assert.match(status, /rejected: check token, room or origin/i, `status: ${status}`);
  await sleep(NO_RETRY_WINDOW_MS);
  assert.equal(seen.sockets.length, 1, "exactly one WebSocket attempt");
  const hook = await page.evaluate(() => ({ attempts: window.__wschat.attempts, delays: window.__wschat.delays.length, next: window.__wschat.nextAttemptAt }));
  assert.deepEqual(hook, { attempts: 1, delays: 0, next: 0 }, "no retry scheduled");
  assert.equal(await page.textContent("#status"), status, "the reason stays on screen");
}

test("a bad token shows 'rejected: check token, room or origin' and is not retried", async () => {
  const { page, context, seen } = await openPage(env.browser, env.server, { token: "wrong-token", connect: false });
  await page.click("#connect");
  await assertRejectedOnce(page, seen);
  // Fixing the token and connecting again works.
  await page.fill("#token", TOKEN);
  await page.click("#connect");
  await waitOnline(page);
  await context.close();
});

test("a page served from an Origin the server does not allow shows the rejection and is not retried", async () => {
  // Same server binary, but only http://localhost:<port> is allowed; the
  // page is loaded from http://127.0.0.1:<port>, so its Origin is refused.
  const port = await freePort();
  const strict = await startServer({ port, origins: [`http://localhost:${port}`] });
  try {
    const { page, context, seen } = await openPage(env.browser, strict, { connect: false });
    await page.click("#connect");
    await assertRejectedOnce(page, seen);
    await context.close();
  } finally {
    await strict.stop();
  }
});

test("a first connect while the server is down keeps backing off (no false 'rejected') and connects when it is up", async () => {
  const down = await startServer();
  const { page, context, seen } = await openPage(env.browser, down, { connect: false });
  await down.stop();
  await page.click("#connect");
  await page.waitForFunction(() => window.__wschat.delays.length >= 2, null, { timeout: 15_000 });
  const status = await page.textContent("#status");
  assert.match(status, /unreachable/i, `status: ${status}`);
  assert.doesNotMatch(status, /rejected/i);
  const back = await down.restart();
  try {
    await waitOnline(page, 20_000);
    assert.ok(seen.sockets.length >= 3, "it kept trying");
  } finally {
    await context.close();
    await back.stop();
  }
});
