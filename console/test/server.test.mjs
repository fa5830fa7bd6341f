// The Server page in a real browser against the real server: version,
// mode, readiness and totals from GetServerStatus, following a chat
// connection as it opens and closes; a key without ivschatd:GetServerStatus
// sees the refusal.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { assertNoPageErrors, expectHttpErrors, launch, screenshot, signIn } from './lib/browser.mjs';
import { FULL_KEY, READ_ONLY_KEY, TOKEN_ONLY_KEY, startServer } from './lib/server.mjs';
import { apiClient } from './lib/api-client.mjs';

const DOCS = resolve(dirname(fileURLToPath(import.meta.url)), '../../docs');
// The page refreshes every 5 s; room for a slow CI machine.
const REFRESH_TIMEOUT = 20_000;

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** An API operation signed with the full-access key, as any SDK would sign it. */
const api = (operation, body) => apiClient(server.endpoint, FULL_KEY)(operation, body);

/** What GetServerStatus itself says, to compare the page with. */
const serverStatus = () => api('GetServerStatus', {});

const prop = (page, name) => page.locator(`[data-prop="${name}"]`);

async function waitFigure(page, name, value) {
  await page.waitForFunction(
    ([n, v]) => document.querySelector(`dd[data-figure="${n}"]`)?.textContent === v,
    [name, String(value)],
    { timeout: REFRESH_TIMEOUT },
  );
}

test('the Server page shows version, mode, readiness and live totals', async () => {
  const want = await serverStatus();
  const page = await browser.newPage();
  await signIn(page, server.consoleUrl, FULL_KEY);
  await page.getByRole('link', { name: 'Server' }).click();
  await page.getByRole('heading', { level: 1, name: 'Server' }).waitFor();
  await prop(page, 'version').waitFor();
  assert.equal(await prop(page, 'version').innerText(), want.version);
  assert.ok(want.version.length > 0);
  assert.equal(await prop(page, 'mode').innerText(), 'single');
  assert.equal(await prop(page, 'ready').innerText(), 'Ready');
  const readiness = page.getByRole('region', { name: 'Readiness' });
  for (const c of want.checks) await readiness.getByText(`${c.name}: ok`).waitFor();
  await page.getByText(want.node, { exact: true }).first().waitFor();
  // Single node: no per-node table; no chat logging configured.
  assert.equal(await page.getByRole('heading', { name: 'Nodes' }).count(), 0);
  await page.getByText('No chat logging destination is in use.').waitFor();
  await waitFigure(page, 'connections', 0);
  await screenshot(page, 'server');
  if (process.env.CONSOLE_UPDATE_DOCS === '1') {
    mkdirSync(DOCS, { recursive: true });
    await page.screenshot({ path: join(DOCS, 'console-server.png') });
  }

  // A chat connection (opened by the page's own browser: Node 20 has no
  // WebSocket) shows in the totals, and goes.
  const room = await api('CreateRoom', { name: 'server-page' });
  const { token } = await api('CreateChatToken', { roomIdentifier: room.arn, userId: 'raw-client' });
  const wsUrl = server.endpoint.replace(/^http/, 'ws') + '/';
  await page.evaluate(
    ([url, t]) =>
      new Promise((resolveOpen, reject) => {
        const ws = new WebSocket(url, t);
        window.testSocket = ws;
        ws.onopen = resolveOpen;
        ws.onerror = () => reject(new Error('WebSocket failed'));
      }),
    [wsUrl, token],
  );
  await waitFigure(page, 'connections', 1);
  await waitFigure(page, 'rooms', 1);
  await page.evaluate(() => window.testSocket.close(1000));
  await waitFigure(page, 'connections', 0);
  assertNoPageErrors(page);
  await page.close();
});

test('readable at phone width', async () => {
  const page = await browser.newPage({ width: 390, height: 844 });
  await signIn(page, server.consoleUrl, READ_ONLY_KEY);
  await page.goto(`${server.consoleUrl}#/server`);
  await prop(page, 'ready').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0);
  await screenshot(page, 'server-390');
  assertNoPageErrors(page);
  await page.close();
});

test('a key without ivschatd:GetServerStatus sees the API\'s refusal', async () => {
  const page = await browser.newPage();
  expectHttpErrors(page, 403);
  await signIn(page, server.consoleUrl, TOKEN_ONLY_KEY);
  await page.goto(`${server.consoleUrl}#/server`);
  await page.getByRole('alert').filter({ hasText: 'AccessDeniedException' }).waitFor();
  await page.getByText('This key may not read the server').waitFor();
  await screenshot(page, 'server-denied');
  assertNoPageErrors(page);
  await page.close();
});
