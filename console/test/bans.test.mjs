// The room page's bans in a real browser against the real server: two tabs
// join the live chat panel as alice and bob; alice bans bob from the
// Connections table (from the keyboard), bob is disconnected and his next
// Join is refused at the handshake; the Bans list shows him until alice
// unbans him, after which he joins again. Also: the form's field errors,
// the list's pages, a read-only key (may list, may not ban) and phone width.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiClient } from './lib/api-client.mjs';
import { assertNoPageErrors, expectHttpErrors, launch, screenshot, signIn } from './lib/browser.mjs';
import { FULL_KEY, READ_ONLY_KEY, startServer } from './lib/server.mjs';

// Waits that follow the page's 3 s refresh, with room for a slow machine.
const REFRESH_TIMEOUT = 15_000;

let server;
let browser;
let api;
let room;
before(async () => {
  server = await startServer();
  browser = await launch();
  api = apiClient(server.endpoint, FULL_KEY);
  room = await api('CreateRoom', { name: 'ban-room' });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openRoom(key = FULL_KEY, viewport) {
  const page = await browser.newPage(viewport);
  await signIn(page, server.consoleUrl, key);
  await page.goto(`${server.consoleUrl}#/rooms/${room.id}`);
  await page.getByRole('heading', { level: 1, name: 'Room ban-room' }).waitFor();
  return page;
}

async function join(page, userId) {
  await page.getByLabel('User ID', { exact: true }).fill(userId);
  await page.getByRole('button', { name: 'Join', exact: true }).click();
}

const chatStatus = (page, text) => page.locator('#chat-status', { hasText: text }).waitFor({ timeout: REFRESH_TIMEOUT });
const bansSection = (page) => page.getByRole('region', { name: 'Bans', exact: true });
const bansTable = (page) => page.getByRole('region', { name: 'Bans in force' });
const connectionsTable = (page) => page.getByRole('region', { name: /^Open connections/ });
const banForm = (page) => page.getByRole('form', { name: 'Ban a user' });

/** The user IDs the Bans table lists, in order. */
async function listedBans(page) {
  return bansTable(page).locator('tbody tr td:first-child .mono').allInnerTexts();
}

async function bannedUsers() {
  return (await api('ListBans', { roomIdentifier: room.arn })).bans.map((b) => b.userId);
}

test('ban bob from the connections table: he is disconnected and refused until unbanned', async () => {
  const alice = await openRoom();
  await join(alice, 'alice');
  await chatStatus(alice, 'Connected as alice.');
  const bob = await openRoom();
  // His refused handshake is logged by Chromium: expected here.
  expectHttpErrors(bob, 403);
  await join(bob, 'bob');
  await chatStatus(bob, 'Connected as bob.');
  await bansSection(alice).getByText('Nobody is banned from this room.').waitFor();

  // From the keyboard: Ban on bob's row opens the confirmation, whose
  // first field has focus; Enter in the reason submits.
  const banBob = connectionsTable(alice).getByRole('button', { name: 'Ban bob' });
  await banBob.waitFor({ timeout: REFRESH_TIMEOUT });
  await banBob.focus();
  await alice.keyboard.press('Enter');
  const dialog = alice.getByRole('dialog', { name: 'Ban bob?' });
  await dialog.waitFor();
  assert.equal(await alice.evaluate(() => document.activeElement?.id), 'ban-dialog-duration');
  await alice.keyboard.press('Tab');
  await alice.keyboard.type('spamming');
  await screenshot(alice, 'bans-confirm');
  await alice.keyboard.press('Enter');
  await dialog.waitFor({ state: 'detached' });

  // Bob is disconnected with the reason, as DisconnectUser would.
  await chatStatus(bob, 'Disconnected by the server: 1000 spamming.');
  await bob.getByRole('list', { name: 'Chat frames' }).locator('li.chat-event', { hasText: 'User bob was disconnected: spamming.' }).waitFor();
  // Alice's page says so, with focus on the news, and lists the ban.
  const status = bansSection(alice).getByRole('status');
  await status.filter({ hasText: 'bob is banned until unbanned.' }).waitFor();
  await focusMovesTo(alice, /^bob is banned until unbanned\.$/);
  const row = bansTable(alice).getByRole('row', { name: /bob/ });
  await row.getByRole('cell', { name: 'spamming' }).waitFor();
  await row.getByRole('cell', { name: 'until unbanned' }).waitFor();
  assert.deepEqual(await bannedUsers(), ['bob']);
  await connectionsTable(alice).getByRole('button', { name: 'Ban bob' }).waitFor({ state: 'detached', timeout: REFRESH_TIMEOUT });
  await screenshot(alice, 'bans-listed-alice');

  // Bob's token is minted, but the handshake is refused (403, which a
  // browser shows only as 1006).
  await join(bob, 'bob');
  await chatStatus(bob, 'Could not join as bob: the connection was lost or refused (1006).');
  await bob.getByRole('list', { name: 'Chat frames' }).getByText(/may be banned from the room/).waitFor();
  assert.deepEqual(
    (await api('ListRoomConnections', { identifier: room.arn })).connections.map((c) => c.userId),
    ['alice'],
  );
  await screenshot(bob, 'bans-refused-bob');

  // Unban: the list empties and bob gets in again.
  await bansTable(alice).getByRole('button', { name: 'Unban bob' }).click();
  await status.filter({ hasText: 'bob is no longer banned.' }).waitFor();
  await focusMovesTo(alice, /^bob is no longer banned\.$/);
  await bansSection(alice).getByText('Nobody is banned from this room.').waitFor();
  assert.deepEqual(await bannedUsers(), []);
  await join(bob, 'bob');
  await chatStatus(bob, 'Connected as bob.');
  await connectionsTable(alice).getByRole('button', { name: 'Ban bob' }).waitFor({ timeout: REFRESH_TIMEOUT });

  await alice.getByRole('button', { name: 'Leave' }).click();
  await bob.getByRole('button', { name: 'Leave' }).click();
  assertNoPageErrors(alice);
  assertNoPageErrors(bob);
  await alice.close();
  await bob.close();
});

test('the ban form: field errors next to their fields, a timed ban, cancel', async () => {
  const page = await openRoom();
  expectHttpErrors(page, 400);
  const form = banForm(page);
  await form.getByLabel('User to ban').fill('carol');

  // Out of range: the API's message under the duration, no banner.
  const duration = form.getByLabel('Duration in minutes (optional)');
  await duration.fill('0');
  await form.getByRole('button', { name: 'Ban user' }).click();
  await form.locator('#ban-form-duration-error', { hasText: 'must be between 1 and 525600' }).waitFor();
  assert.equal(await duration.getAttribute('aria-invalid'), 'true');
  assert.equal(await form.getByRole('alert').count(), 0);
  // Not a number: sent as typed, so the API refuses it rather than a
  // browser reading it as empty (which would mean "until unbanned").
  await duration.fill('1h');
  await form.getByRole('button', { name: 'Ban user' }).click();
  await form.locator('#ban-form-duration-error', { hasText: 'must be an integer' }).waitFor();
  await screenshot(page, 'bans-field-error');
  assert.deepEqual(await bannedUsers(), []);

  await duration.fill('90');
  await form.getByLabel('Reason (optional)').fill('timeout');
  const before = Date.now();
  await form.getByRole('button', { name: 'Ban user' }).click();
  await bansSection(page).getByRole('status').filter({ hasText: /^carol is banned until .+\.$/ }).waitFor();
  await focusMovesTo(page, /^carol is banned until /);
  assert.equal(await form.getByLabel('User to ban').inputValue(), '', 'the form is cleared');
  const row = bansTable(page).getByRole('row', { name: /carol/ });
  await row.getByRole('cell', { name: 'timeout' }).waitFor();
  const [ban] = (await api('ListBans', { roomIdentifier: room.arn })).bans;
  assert.equal(ban.userId, 'carol');
  const minutes = (Date.parse(ban.expiresAt) - before) / 60_000;
  assert.ok(minutes > 89 && minutes <= 90.5, `expires in ${minutes} minutes`);
  // The Expires cell shows that time, with the API's value as its title.
  assert.equal(await row.locator('td').nth(3).locator('time').getAttribute('datetime'), ban.expiresAt);

  // Cancel in the confirmation bans nobody. dave has a connection of his own.
  const dave = await openRoom();
  await join(dave, 'dave');
  await chatStatus(dave, 'Connected as dave.');
  await connectionsTable(page).getByRole('button', { name: 'Ban dave' }).click({ timeout: REFRESH_TIMEOUT });
  await page.getByRole('dialog', { name: 'Ban dave?' }).getByRole('button', { name: 'Cancel' }).click();
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  // Escape closes it too.
  await connectionsTable(page).getByRole('button', { name: 'Ban dave' }).click();
  await page.getByRole('dialog', { name: 'Ban dave?' }).waitFor();
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  assert.deepEqual(await bannedUsers(), ['carol']);
  await dave.getByRole('button', { name: 'Leave' }).click();

  assertNoPageErrors(page);
  assertNoPageErrors(dave);
  await page.close();
  await dave.close();
});

test('the bans list pages with nextToken; an unban that empties the last page shows the one before', async () => {
  // With carol from the test before: 21 bans, one more than a page.
  for (let i = 0; i < 20; i++) await api('BanUser', { roomIdentifier: room.arn, userId: `filler-${String(i).padStart(2, '0')}` });
  const page = await openRoom();
  const pager = bansSection(page).getByRole('navigation', { name: 'Pages of bans' });
  await pager.getByText('Page 1').waitFor();
  let users = await listedBans(page);
  assert.equal(users.length, 20);
  assert.equal(users[0], 'carol');
  assert.equal(users[19], 'filler-18');
  assert.equal(await pager.getByRole('button', { name: 'Previous' }).isDisabled(), true);

  await pager.getByRole('button', { name: 'Next' }).click();
  await pager.getByText('Page 2').waitFor();
  await bansTable(page).getByRole('button', { name: 'Unban filler-19' }).waitFor();
  assert.deepEqual(await listedBans(page), ['filler-19']);
  assert.equal(await pager.getByRole('button', { name: 'Next' }).isDisabled(), true);
  await screenshot(page, 'bans-page-2');

  await bansTable(page).getByRole('button', { name: 'Unban filler-19' }).click();
  await bansSection(page).getByRole('status').filter({ hasText: 'filler-19 is no longer banned.' }).waitFor();
  // Back on the first page, which is now all there is: no pager.
  await bansTable(page).getByRole('button', { name: 'Unban carol' }).waitFor();
  await pager.waitFor({ state: 'detached' });
  users = await listedBans(page);
  assert.equal(users.length, 20);

  for (let i = 0; i < 19; i++) await api('UnbanUser', { roomIdentifier: room.arn, userId: `filler-${String(i).padStart(2, '0')}` });
  await bansSection(page).getByRole('button', { name: 'Refresh bans' }).click();
  await page.waitForFunction(() => document.querySelectorAll('[aria-label="Bans in force"] tbody tr').length === 1);
  assert.deepEqual(await listedBans(page), ['carol']);
  assertNoPageErrors(page);
  await page.close();
});

test('a read-only key sees the bans but may not ban', async () => {
  await api('BanUser', { roomIdentifier: room.arn, userId: 'eve', reason: 'read me' });
  const page = await openRoom(READ_ONLY_KEY);
  expectHttpErrors(page, 403);
  await bansTable(page).getByRole('row', { name: /eve/ }).getByRole('cell', { name: 'read me' }).waitFor();

  const form = banForm(page);
  await form.getByLabel('User to ban').fill('mallory');
  await form.getByRole('button', { name: 'Ban user' }).click();
  await form.getByRole('alert').filter({ hasText: /^AccessDeniedException: / }).waitFor();
  // Nor unban.
  await bansTable(page).getByRole('button', { name: 'Unban eve' }).click();
  await bansSection(page).locator('.bans-list').getByRole('alert').filter({ hasText: /^AccessDeniedException: / }).waitFor();
  await screenshot(page, 'bans-read-only');
  assert.deepEqual(await bannedUsers(), ['carol', 'eve']);
  assertNoPageErrors(page);
  await page.close();
});

test('readable at phone width', async () => {
  const page = await openRoom(FULL_KEY, { width: 390, height: 844 });
  await bansTable(page).getByRole('button', { name: 'Unban eve' }).waitFor();
  await banForm(page).getByLabel('User to ban').fill('frank');
  await banForm(page).getByRole('button', { name: 'Ban user' }).click();
  await bansTable(page).getByRole('button', { name: 'Unban frank' }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0);
  await bansSection(page).scrollIntoViewIfNeeded();
  await screenshot(page, 'bans-390');
  assertNoPageErrors(page);
  await page.close();
});

// focusMovesTo waits (bounded) until the focused element's text matches re:
// the page moves focus to its status line in the render after the status
// appears, so reading it at once races that render.
async function focusMovesTo(page, re) {
  try {
    await page.waitForFunction((src) => new RegExp(src).test(document.activeElement?.textContent ?? ''), re.source, { timeout: 5000 });
  } catch {
    assert.match(await page.evaluate(() => document.activeElement?.textContent ?? ''), re);
  }
}
