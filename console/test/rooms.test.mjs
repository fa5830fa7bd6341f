// The Rooms page in a real browser against the real server: create (limits,
// review handler, a tag, a logging configuration), edit (a limit and the
// tags), the API's filters, paging, a validation error next to its field,
// delete, a read-only key's refusal, and a phone-width screen. What the page
// did is checked through the API too, not only on screen.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { apiClient } from './lib/api-client.mjs';
import { assertNoPageErrors, expectHttpErrors, launch, screenshot, signIn } from './lib/browser.mjs';
import { FULL_KEY, READ_ONLY_KEY, startServer } from './lib/server.mjs';

const DOCS = resolve(dirname(fileURLToPath(import.meta.url)), '../../docs');
const HANDLER = 'arn:aws:lambda:us-west-2:123456789012:function:moderate';

let server;
let browser;
let api;
let archive; // a logging configuration made for these tests
before(async () => {
  server = await startServer();
  browser = await launch();
  api = apiClient(server.endpoint, FULL_KEY);
  archive = await api('CreateLoggingConfiguration', { name: 'archive', destinationConfiguration: { s3: { bucketName: 'chat-archive' } } });
  assert.equal(archive.state, 'ACTIVE');
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The rooms table as [{<header>: <cell text>}], once loaded (no "…" left). */
async function tableRows(page) {
  await page.waitForFunction(() => {
    const t = document.querySelector('.rooms-page table');
    return t && !t.closest('[aria-busy="true"]') && ![...t.querySelectorAll('td')].some((td) => td.textContent === '…');
  });
  return page.evaluate(() => {
    const t = document.querySelector('.rooms-page table');
    const heads = [...t.querySelectorAll('thead th')].map((th) => th.textContent.trim());
    return [...t.querySelectorAll('tbody tr')]
      .filter((tr) => !tr.querySelector('.table-empty'))
      .map((tr) => Object.fromEntries([...tr.children].map((td, i) => [heads[i], td.textContent.trim()])));
  });
}

async function openRooms(page, key = FULL_KEY) {
  await signIn(page, server.consoleUrl, key);
  await page.getByRole('heading', { level: 1, name: 'Rooms' }).waitFor();
  await tableRows(page);
}

async function filterBy(page, { name = '', uri = '', logging = '' }) {
  const form = page.getByRole('form', { name: 'Filter rooms' });
  await form.getByLabel('Name', { exact: true }).fill(name);
  await form.getByLabel('Review handler URI').fill(uri);
  await form.getByLabel('Logging configuration').selectOption(logging);
  await form.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByRole('table', { name: name || uri || logging ? 'Rooms matching the filters' : 'Rooms' }).waitFor();
  await tableRows(page);
}

test('create a room with limits, a review handler, tags and a logging configuration; then edit it', async () => {
  const page = await browser.newPage();
  await openRooms(page);
  await page.getByRole('button', { name: 'Create room' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create room' });
  await dialog.getByLabel('Name').fill('lobby');
  await dialog.getByLabel('Maximum message length').fill('200');
  await dialog.getByLabel('Maximum messages per second').fill('5');
  await dialog.getByLabel('Review handler URI').fill(HANDLER);
  await dialog.getByLabel('Fallback result').selectOption('DENY');
  await dialog.getByLabel(`archive (${archive.id})`).check();
  await dialog.getByRole('button', { name: 'Add tag' }).click();
  await dialog.getByLabel('Tag 1 key').fill('team');
  await dialog.getByLabel('Tag 1 value').fill('support');
  await dialog.getByRole('button', { name: 'Add tag' }).click();
  await dialog.getByLabel('Tag 2 key').fill('env');
  await dialog.getByLabel('Tag 2 value').fill('dev');
  await screenshot(page, 'rooms-create-form');
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'created' }).waitFor();
  assert.equal(await dialog.count(), 0);

  const { rooms } = await api('ListRooms', { name: 'lobby' });
  assert.equal(rooms.length, 1);
  const stored = await api('GetRoom', { identifier: rooms[0].arn });
  assert.equal(stored.maximumMessageLength, 200);
  assert.equal(stored.maximumMessageRatePerSecond, 5);
  assert.deepEqual(stored.messageReviewHandler, { uri: HANDLER, fallbackResult: 'DENY' });
  assert.deepEqual(stored.loggingConfigurationIdentifiers, [archive.arn]);
  assert.deepEqual(stored.tags, { team: 'support', env: 'dev' });

  const row = (await tableRows(page)).find((r) => r.ID === stored.id);
  assert.ok(row, 'the new room is in the table');
  assert.equal(row.Name, 'lobby');
  assert.equal(row['Max. length'], '200');
  assert.equal(row['Max. msgs/s'], '5');
  assert.match(row['Review handler'], /function:moderate fallback DENY/);
  assert.equal(row['Logging configurations'], 'archive');
  assert.match(row.Tags, /env=dev/);
  assert.match(row.Tags, /team=support/);
  // The ID links to the room's page.
  assert.equal(await page.getByRole('link', { name: stored.id }).getAttribute('href'), `#/rooms/${stored.id}`);
  await screenshot(page, 'rooms-created');

  // Edit: a limit, one tag's value, one tag removed, the handler removed.
  await page.getByRole('button', { name: `Edit room lobby (${stored.id})` }).click();
  const edit = page.getByRole('dialog', { name: 'Edit room lobby' });
  assert.equal(await edit.getByLabel('Maximum message length').inputValue(), '200');
  assert.equal(await edit.getByLabel(`archive (${archive.id})`).isChecked(), true);
  await edit.getByLabel('Maximum message length').fill('300');
  await edit.getByLabel('Review handler URI').fill('');
  // Tags are listed by key: env (1), team (2).
  assert.equal(await edit.getByLabel('Tag 1 key').inputValue(), 'env');
  await edit.getByLabel('Tag 2 value').fill('ops');
  await edit.getByRole('button', { name: 'Remove tag 1' }).click();
  await screenshot(page, 'rooms-edit-form');
  await edit.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('status').filter({ hasText: 'saved' }).waitFor();

  const edited = await api('GetRoom', { identifier: stored.arn });
  assert.equal(edited.maximumMessageLength, 300);
  assert.equal(edited.maximumMessageRatePerSecond, 5);
  assert.equal(edited.messageReviewHandler, undefined);
  assert.deepEqual(edited.loggingConfigurationIdentifiers, [archive.arn]);
  assert.deepEqual((await api('ListTagsForResource', { resourceArn: stored.arn })).tags, { team: 'ops' });
  const editedRow = (await tableRows(page)).find((r) => r.ID === stored.id);
  assert.equal(editedRow['Max. length'], '300');
  assert.equal(editedRow.Tags, 'team=ops');
  assert.equal(editedRow['Review handler'], '—');
  assertNoPageErrors(page);
});

test("the API's filters: logging configuration, review handler URI and name", async () => {
  const logged = await api('CreateRoom', { name: 'filter-logged', loggingConfigurationIdentifiers: [archive.arn] });
  const reviewed = await api('CreateRoom', { name: 'filter-reviewed', messageReviewHandler: { uri: HANDLER } });
  const plain = await api('CreateRoom', { name: 'filter-plain' });
  const page = await browser.newPage();
  await openRooms(page);
  const ids = async () => (await tableRows(page)).map((r) => r.ID).sort();
  const all = await ids();
  for (const r of [logged, reviewed, plain]) assert.ok(all.includes(r.id));

  // The same answers as the API's own filters (the first test's room
  // references the configuration too, until it is deleted).
  const expectLogged = (await api('ListRooms', { loggingConfigurationIdentifier: archive.arn })).rooms.map((r) => r.id).sort();
  assert.ok(expectLogged.includes(logged.id) && !expectLogged.includes(plain.id));
  await filterBy(page, { logging: archive.arn });
  assert.deepEqual(await ids(), expectLogged);
  await screenshot(page, 'rooms-filtered-logging');

  await filterBy(page, { uri: HANDLER });
  assert.deepEqual(await ids(), [reviewed.id]);

  await filterBy(page, { name: 'filter-plain' });
  assert.deepEqual(await ids(), [plain.id]);

  await filterBy(page, { name: 'no-such-room' });
  assert.deepEqual(await ids(), []);
  assert.equal(await page.getByText('No room matches the filters.').count(), 1);

  // A filter the API refuses is named next to its control.
  expectHttpErrors(page, 400);
  await filterBy(page, { uri: 'not-a-handler' });
  const uriInput = page.getByRole('form', { name: 'Filter rooms' }).getByLabel('Review handler URI');
  assert.equal(await uriInput.getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('#filter-handler-error').innerText(), /must match the pattern/);

  await page.getByRole('button', { name: 'Clear filters' }).click();
  await page.getByRole('table', { name: 'Rooms', exact: true }).waitFor();
  assert.deepEqual(await ids(), all);
  assertNoPageErrors(page);
});

test('validation errors are shown next to the fields the API names', async () => {
  const page = await browser.newPage();
  expectHttpErrors(page, 400);
  await openRooms(page);
  await page.getByRole('button', { name: 'Create room' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create room' });
  await dialog.getByLabel('Name').fill('bad limits');
  await dialog.getByLabel('Maximum message length').fill('501');
  await dialog.getByLabel('Maximum messages per second').fill('0');
  await dialog.getByRole('button', { name: 'Add tag' }).click();
  await dialog.getByLabel('Tag 1 key').fill('aws:reserved');
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();

  const length = dialog.getByLabel('Maximum message length');
  await dialog.locator('#room-max-length-error').waitFor();
  assert.equal(await length.getAttribute('aria-invalid'), 'true');
  assert.match(await length.getAttribute('aria-describedby'), /room-max-length-error/);
  assert.equal(await dialog.locator('#room-max-length-error').innerText(), 'must be between 1 and 500');
  assert.equal(await dialog.locator('#room-max-rate-error').innerText(), 'must be between 1 and 100');
  assert.match(await dialog.locator('#room-name-error').innerText(), /must match the pattern/);
  assert.match(await dialog.locator('#room-tags-error').innerText(), /reserved prefix aws:/);
  // Every field error is placed, so no banner repeats them.
  assert.equal(await dialog.getByRole('alert').count(), 0);
  await screenshot(page, 'rooms-validation');

  // Fixed, the same form creates the room.
  await dialog.getByLabel('Name').fill('fixed-limits');
  await length.fill('500');
  await dialog.getByLabel('Maximum messages per second').fill('100');
  await dialog.getByRole('button', { name: 'Remove tag 1' }).click();
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'fixed-limits created' }).waitFor();
  const { rooms } = await api('ListRooms', { name: 'fixed-limits' });
  assert.equal(rooms.length, 1);
  assertNoPageErrors(page);
});

test('paging through more rooms than a page holds', async () => {
  const made = [];
  for (let i = 0; i < 12; i++) made.push((await api('CreateRoom', { name: 'paged' })).id);
  const page = await browser.newPage();
  await openRooms(page);
  await page.getByLabel('Rooms per page').selectOption('10');
  await filterBy(page, { name: 'paged' });
  const pager = page.getByRole('navigation', { name: 'Pages of rooms' });
  const first = (await tableRows(page)).map((r) => r.ID);
  assert.equal(first.length, 10);
  assert.equal(await pager.getByRole('button', { name: 'Previous' }).isDisabled(), true);
  await pager.getByRole('button', { name: 'Next' }).click();
  await pager.getByText('Page 2').waitFor();
  const second = (await tableRows(page)).map((r) => r.ID);
  assert.equal(second.length, 2);
  assert.equal(await pager.getByRole('button', { name: 'Next' }).isDisabled(), true);
  assert.deepEqual([...first, ...second].sort(), [...made].sort());
  await screenshot(page, 'rooms-page-2');
  await pager.getByRole('button', { name: 'Previous' }).click();
  await pager.getByText('Page 1').waitFor();
  assert.deepEqual((await tableRows(page)).map((r) => r.ID), first);
  assertNoPageErrors(page);
});

test('delete asks first, then the room is gone', async () => {
  const doomed = await api('CreateRoom', { name: 'doomed' });
  const page = await browser.newPage();
  await openRooms(page);
  await filterBy(page, { name: 'doomed' });
  await page.getByRole('button', { name: `Delete room doomed (${doomed.id})` }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete room?' });
  assert.match(await confirm.innerText(), new RegExp(doomed.id));
  // Cancel (Escape) keeps it.
  await page.keyboard.press('Escape');
  await confirm.waitFor({ state: 'detached' });
  await api('GetRoom', { identifier: doomed.arn });

  await page.getByRole('button', { name: `Delete room doomed (${doomed.id})` }).click();
  await screenshot(page, 'rooms-delete-confirm');
  await confirm.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('status').filter({ hasText: 'doomed deleted' }).waitFor();
  assert.deepEqual(await tableRows(page), []);
  await assert.rejects(api('GetRoom', { identifier: doomed.arn }), (err) => err.code === 'ResourceNotFoundException');
  assertNoPageErrors(page);
});

test("a read-only key browses, and its create attempt shows the API's AccessDeniedException", async () => {
  const page = await browser.newPage();
  expectHttpErrors(page, 403);
  await openRooms(page, READ_ONLY_KEY);
  const rows = await tableRows(page);
  assert.ok(rows.some((r) => r.Name === 'lobby'), 'the read-only key sees the rooms');
  assert.ok(rows.every((r) => /^\d+$/.test(r['Max. length'])), 'and their limits (GetRoom)');

  await page.getByRole('button', { name: 'Create room' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create room' });
  await dialog.getByLabel('Name').fill('not-allowed');
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  const alert = dialog.getByRole('alert');
  await alert.waitFor();
  // Exactly what the API says to this key.
  const refusal = await apiClient(server.endpoint, READ_ONLY_KEY)('CreateRoom', { name: 'not-allowed' }).then(
    () => assert.fail('the read-only key created a room'),
    (err) => err,
  );
  assert.equal(refusal.code, 'AccessDeniedException');
  assert.equal(await alert.innerText(), `AccessDeniedException: ${refusal.body.message}`);
  await screenshot(page, 'rooms-read-only-denied');
  assert.equal((await api('ListRooms', { name: 'not-allowed' })).rooms.length, 0);
  assertNoPageErrors(page);
});

test('keyboard only: create a room without the mouse', async () => {
  const page = await browser.newPage();
  await openRooms(page);
  await page.getByRole('button', { name: 'Create room' }).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Create room' });
  await dialog.waitFor();
  // The dialog takes focus: its first control.
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'room-name');
  await page.keyboard.type('typed-room');
  await page.keyboard.press('Tab');
  await page.keyboard.type('42');
  await page.keyboard.press('Enter');
  await page.getByRole('status').filter({ hasText: 'typed-room created' }).waitFor();
  const { rooms } = await api('ListRooms', { name: 'typed-room' });
  assert.equal((await api('GetRoom', { identifier: rooms[0].arn })).maximumMessageLength, 42);
  assertNoPageErrors(page);
});

test('readable at phone width: the table scrolls in its own box', async () => {
  const page = await browser.newPage({ width: 390, height: 844 });
  await openRooms(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0);
  const wrap = await page.evaluate(() => {
    const w = document.querySelector('.rooms-page .table-wrap');
    return { scroll: w.scrollWidth, client: w.clientWidth };
  });
  assert.ok(wrap.scroll > wrap.client, 'the table scrolls sideways inside its container');
  await screenshot(page, 'rooms-390');
  await page.getByRole('button', { name: 'Create room' }).click();
  const box = await page.getByRole('dialog', { name: 'Create room' }).boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390, `the dialog fits: ${JSON.stringify(box)}`);
  await screenshot(page, 'rooms-create-form-390');
  assertNoPageErrors(page);
});

// The picture in docs/: a fresh server with a few typical rooms, at
// 1280×800 in the light scheme. Written only with CONSOLE_UPDATE_DOCS=1,
// so ordinary runs (and CI) never touch docs/.
test('docs screenshot of the Rooms page', async () => {
  const docsServer = await startServer();
  try {
    const call = apiClient(docsServer.endpoint, FULL_KEY);
    const lc = await call('CreateLoggingConfiguration', { name: 'archive', destinationConfiguration: { s3: { bucketName: 'chat-archive' } } });
    await call('CreateRoom', { name: 'support', maximumMessageLength: 300, maximumMessageRatePerSecond: 5, tags: { team: 'support' } });
    await call('CreateRoom', { name: 'town-hall', maximumMessageRatePerSecond: 50, loggingConfigurationIdentifiers: [lc.arn], tags: { env: 'prod', team: 'events' } });
    await call('CreateRoom', { name: 'lobby', messageReviewHandler: { uri: HANDLER, fallbackResult: 'DENY' }, loggingConfigurationIdentifiers: [lc.arn], tags: { env: 'prod' } });
    const page = await browser.newPage({ width: 1280, height: 800 });
    await page.emulateMedia({ colorScheme: 'light' });
    await signIn(page, docsServer.consoleUrl, FULL_KEY);
    await page.getByRole('heading', { level: 1, name: 'Rooms' }).waitFor();
    assert.equal((await tableRows(page)).length, 3);
    await screenshot(page, 'rooms');
    if (process.env.CONSOLE_UPDATE_DOCS === '1') {
      mkdirSync(DOCS, { recursive: true });
      await page.screenshot({ path: join(DOCS, 'console-rooms.png') });
    }
    assertNoPageErrors(page);
  } finally {
    await docsServer.stop();
  }
});
