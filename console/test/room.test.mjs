// The room detail page and its live chat panel in a real browser against
// the real server: two tabs (each its own sessionStorage, so its own
// sign-in) join the room as two users, exchange messages, delete, send an
// event and disconnect each other, and the room's live figures follow.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join as joinPath, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { assertNoPageErrors, expectHttpErrors, launch, screenshot, signIn } from './lib/browser.mjs';
import { FULL_KEY, TOKEN_ONLY_KEY, startServer } from './lib/server.mjs';
import { apiClient } from './lib/api-client.mjs';
import { chatLog as log, joinChat as join, messageEntry, openRoom as openRoomPage, waitFigure } from './lib/room-page.mjs';

const DOCS = resolve(dirname(fileURLToPath(import.meta.url)), '../../docs');

let server;
let browser;
let room;
before(async () => {
  server = await startServer();
  browser = await launch();
  room = await api('CreateRoom', {
    name: 'live-room',
    maximumMessageLength: 40,
    maximumMessageRatePerSecond: 20,
    tags: { team: 'support' },
  });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** An API operation signed with the full-access key, as any SDK would sign it. */
const api = (operation, body) => apiClient(server.endpoint, FULL_KEY)(operation, body);

const openRoom = (viewport) => openRoomPage(browser, server.consoleUrl, room, { viewport });

test('the room page shows the room, then two users chat, delete, send an event and disconnect', async () => {
  const alice = await openRoom();
  const details = alice.getByRole('region', { name: 'Details' });
  await details.getByText(room.arn).waitFor();
  await details.getByText('40 characters').waitFor();
  await details.getByText('team').waitFor();
  await details.getByText('support').waitFor();
  await waitFigure(alice, 'connections', 0);
  await alice.getByText('Nobody is connected.').waitFor();
  await screenshot(alice, 'room-empty');

  // Alice moderates: she may delete and disconnect over her connection.
  await join(alice, 'alice', ['DELETE_MESSAGE', 'DISCONNECT_USER'], { displayName: 'Alice' });
  await waitFigure(alice, 'connections', 1);

  const bob = await openRoom();
  await join(bob, 'bob');
  await waitFigure(alice, 'connections', 2);
  await waitFigure(alice, 'users', 2);
  const table = alice.getByRole('region', { name: /Open connections/ });
  await table.getByRole('cell', { name: 'alice', exact: true }).waitFor();
  await table.getByRole('cell', { name: 'bob', exact: true }).waitFor();
  await table.getByText('displayName=Alice').waitFor();

  // Messages both ways; Enter in the message box sends (keyboard only).
  await alice.getByLabel('Message', { exact: true }).fill('hello from alice');
  await alice.getByLabel('Message', { exact: true }).press('Enter');
  await messageEntry(bob, 'hello from alice').waitFor();
  assert.match(await messageEntry(bob, 'hello from alice').innerText(), /^alice/);
  await bob.getByLabel('Message', { exact: true }).fill('hi from bob');
  await bob.getByRole('button', { name: 'Send', exact: true }).click();
  await messageEntry(alice, 'hi from bob').waitFor();
  await messageEntry(bob, 'hi from bob').waitFor();
  await waitFigure(alice, 'messages', /^0\.[1-9]/);

  // Over the room's maximumMessageLength: an ERROR frame for bob only.
  await bob.getByLabel('Message', { exact: true }).fill('x'.repeat(41));
  await bob.getByLabel('Message', { exact: true }).press('Enter');
  await log(bob).locator('li.chat-error', { hasText: 'ERROR 400' }).waitFor();
  assert.equal(await log(alice).locator('li.chat-error').count(), 0);
  await screenshot(alice, 'room-chat-alice');
  await screenshot(bob, 'room-chat-bob');
  if (process.env.CONSOLE_UPDATE_DOCS === '1') {
    // The viewport from the connections down: the live chat panel at work.
    mkdirSync(DOCS, { recursive: true });
    await alice.evaluate(() => document.getElementById('connections-title').scrollIntoView({ block: 'start' }));
    await alice.screenshot({ path: joinPath(DOCS, 'console-room.png') });
  }

  // Alice deletes bob's message over her connection (DELETE_MESSAGE), from
  // the keyboard; her focus stays in the log when the button goes.
  await messageEntry(alice, 'hi from bob').getByRole('button', { name: /^Delete/ }).focus();
  await alice.keyboard.press('Enter');
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => ![...document.querySelectorAll('li.chat-message')].some((li) => li.textContent.includes('hi from bob')));
    await log(page).locator('li.chat-deleted', { hasText: 'Message deleted' }).waitFor();
    await log(page).locator('li.chat-event', { hasText: 'aws:DELETE_MESSAGE' }).waitFor();
  }
  assert.equal(await alice.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Chat frames');
  // Bob lacks the capability: his delete goes through the DeleteMessage API.
  await messageEntry(bob, 'hello from alice').getByRole('button', { name: /^Delete/ }).click();
  await alice.waitForFunction(() => ![...document.querySelectorAll('li.chat-message')].some((li) => li.textContent.includes('hello from alice')));
  assert.equal(await log(alice).locator('li.chat-deleted').count(), 2);
  await screenshot(bob, 'room-deleted-bob');

  // An event through SendEvent reaches both.
  await bob.getByLabel('Event name').fill('app:poll');
  await bob.getByLabel('Event attribute 1 key').fill('question');
  await bob.getByLabel('Event attribute 1 value').fill('tea or coffee');
  await bob.getByRole('button', { name: 'Send event' }).click();
  await bob.getByRole('status').filter({ hasText: /^Event \w+ sent\.$/ }).waitFor();
  for (const page of [alice, bob]) {
    await log(page).locator('li.chat-event', { hasText: 'app:poll' }).filter({ hasText: 'question=tea or coffee' }).waitFor();
  }
  await waitFigure(alice, 'events', /^0\.[1-9]/);

  // Alice disconnects bob over her connection (DISCONNECT_USER).
  await alice.getByText('Sent as DISCONNECT_USER over your chat connection').waitFor();
  await alice.getByLabel('User to disconnect').fill('bob');
  await alice.getByRole('form', { name: 'Disconnect a user' }).getByLabel('Reason (optional)').fill('enough tea');
  await alice.getByRole('button', { name: 'Disconnect user' }).click();
  await log(alice).locator('li.chat-event', { hasText: 'User bob was disconnected: enough tea.' }).waitFor();
  // The close carries the moderator's reason (the server's default without one).
  await bob.locator('#chat-status', { hasText: 'Disconnected by the server: 1000 enough tea.' }).waitFor();
  await log(bob).locator('li.chat-event', { hasText: 'User bob was disconnected' }).waitFor();
  await waitFigure(alice, 'connections', 1);
  await screenshot(bob, 'room-disconnected-bob');
  await screenshot(alice, 'room-after-disconnect-alice');

  // Bob, no longer connected, disconnects alice through the API.
  await bob.getByText('Sent through the DisconnectUser API.').waitFor();
  await bob.getByLabel('User to disconnect').fill('alice');
  await bob.getByRole('button', { name: 'Disconnect user' }).click();
  await bob.getByRole('status').filter({ hasText: 'alice was disconnected (DisconnectUser).' }).waitFor();
  await alice.locator('#chat-status', { hasText: 'Disconnected by the server: 1000 disconnected by moderator.' }).waitFor();
  await waitFigure(bob, 'connections', 0);

  // Join again and leave: the page says it was this side that closed.
  await join(bob, 'bob-again');
  await waitFigure(bob, 'connections', 1);
  await bob.getByRole('button', { name: 'Leave' }).click();
  await bob.locator('#chat-status', { hasText: 'You left the room.' }).waitFor();
  await waitFigure(alice, 'connections', 0);

  assertNoPageErrors(alice);
  assertNoPageErrors(bob);
  await alice.close();
  await bob.close();
});

test('leaving the page closes its chat connection', async () => {
  const page = await openRoom();
  await join(page, 'carol');
  const watcher = await openRoom();
  await waitFigure(watcher, 'connections', 1);
  await page.goto(`${server.consoleUrl}#/server`);
  await page.getByRole('heading', { level: 1, name: 'Server' }).waitFor();
  await waitFigure(watcher, 'connections', 0);
  assertNoPageErrors(page);
  assertNoPageErrors(watcher);
  await page.close();
  await watcher.close();
});

test('the figures refresh while the tab is visible and not while hidden', async () => {
  const page = await openRoom();
  const calls = [];
  page.on('request', (r) => {
    if (r.url().endsWith('/ivschatd/GetRoomStats')) calls.push(Date.now());
  });
  const setVisibility = (state) =>
    page.evaluate((s) => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => s });
      document.dispatchEvent(new Event('visibilitychange'));
    }, state);
  await page.waitForTimeout(7000);
  assert.ok(calls.length >= 2, `visible: ${calls.length} GetRoomStats calls in 7 s`);
  await setVisibility('hidden');
  await page.waitForTimeout(500); // a call already in flight may finish
  const hiddenFrom = calls.length;
  await page.waitForTimeout(7000);
  assert.equal(calls.length, hiddenFrom, 'no refresh while hidden');
  await setVisibility('visible');
  await page.waitForTimeout(1000);
  assert.ok(calls.length > hiddenFrom, 'refreshes at once when shown again');
  assertNoPageErrors(page);
  await page.close();
});

test('readable at phone width', async () => {
  const page = await openRoom({ width: 390, height: 844 });
  await join(page, 'phone-user');
  await page.getByLabel('Message', { exact: true }).fill('from a phone');
  await page.getByLabel('Message', { exact: true }).press('Enter');
  await messageEntry(page, 'from a phone').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0);
  await screenshot(page, 'room-390');
  await page.getByRole('button', { name: 'Leave' }).click();
  assertNoPageErrors(page);
  await page.close();
});

test('an unknown room shows the API\'s error', async () => {
  const page = await browser.newPage();
  expectHttpErrors(page, 404);
  await signIn(page, server.consoleUrl, FULL_KEY);
  await page.goto(`${server.consoleUrl}#/rooms/NoSuchRoom12`);
  await page.getByRole('alert').filter({ hasText: 'ResourceNotFoundException' }).waitFor();
  assertNoPageErrors(page);
  await page.close();
});

test('a key that may only mint tokens sees GetRoom refused', async () => {
  const page = await browser.newPage();
  expectHttpErrors(page, 403);
  await signIn(page, server.consoleUrl, TOKEN_ONLY_KEY);
  await page.goto(`${server.consoleUrl}#/rooms/${room.id}`);
  await page.getByRole('alert').filter({ hasText: 'AccessDeniedException' }).waitFor();
  await screenshot(page, 'room-token-only');
  assertNoPageErrors(page);
  await page.close();
});
