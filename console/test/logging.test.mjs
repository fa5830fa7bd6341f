// The Logging configurations page in a real browser against the real
// server: create one of each destination (the server has no --s3-endpoint
// and the like here, so it writes to local files and settles them ACTIVE),
// a validation error next to its field, edit, state refreshed until it
// settles, delete (refused while a room uses it), a read-only key's
// refusal, and a phone-width screen.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { apiClient } from './lib/api-client.mjs';
import { assertNoPageErrors, expectHttpErrors, launch, screenshot, signIn } from './lib/browser.mjs';
import { FULL_KEY, READ_ONLY_KEY, startServer } from './lib/server.mjs';

const DOCS = resolve(dirname(fileURLToPath(import.meta.url)), '../../docs');

let server;
let browser;
let api;
before(async () => {
  server = await startServer();
  browser = await launch();
  api = apiClient(server.endpoint, FULL_KEY);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openLogging(page, key = FULL_KEY) {
  await signIn(page, server.consoleUrl, key);
  await page.getByRole('link', { name: 'Logging configurations' }).click();
  await page.getByRole('heading', { level: 1, name: 'Logging configurations' }).waitFor();
  await page.locator('.logging-page table').waitFor();
}

/** The table as [{<header>: <cell text>}], once the latest list is in. */
async function tableRows(page) {
  await page.waitForFunction(() => {
    const t = document.querySelector('.logging-page table');
    return t && !t.closest('[aria-busy="true"]');
  });
  return page.evaluate(() => {
    const t = document.querySelector('.logging-page table');
    const heads = [...t.querySelectorAll('thead th')].map((th) => th.textContent.trim());
    return [...t.querySelectorAll('tbody tr')]
      .filter((tr) => !tr.querySelector('.table-empty'))
      .map((tr) => Object.fromEntries([...tr.children].map((td, i) => [heads[i], td.textContent.trim()])));
  });
}

async function rowOf(page, id) {
  return (await tableRows(page)).find((r) => r.ID === id);
}

async function create(page, { name, type, value, tags = {} }) {
  await page.getByRole('button', { name: 'Create logging configuration' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create logging configuration' });
  await dialog.getByLabel('Name', { exact: true }).fill(name);
  await dialog.getByLabel(type).check();
  const field = { 'Amazon S3': 'S3 bucket name', 'CloudWatch Logs': 'Log group name', 'Kinesis Data Firehose': 'Delivery stream name' }[type];
  await dialog.getByLabel(field).fill(value);
  let i = 0;
  for (const [k, v] of Object.entries(tags)) {
    i++;
    await dialog.getByRole('button', { name: 'Add tag' }).click();
    await dialog.getByLabel(`Tag ${i} key`).fill(k);
    await dialog.getByLabel(`Tag ${i} value`).fill(v);
  }
  return dialog;
}

async function createdId(page, name) {
  await page.getByRole('status').filter({ hasText: `${name} created` }).waitFor();
  const { loggingConfigurations } = await api('ListLoggingConfigurations', {});
  const lc = loggingConfigurations.find((c) => c.name === name);
  assert.ok(lc, `${name} exists`);
  return lc;
}

test('create S3, CloudWatch Logs and Firehose configurations; each settles ACTIVE', async () => {
  const page = await browser.newPage();
  await openLogging(page);
  assert.equal(await page.getByText('No logging configurations yet.').count(), 1);

  const dialog = await create(page, { name: 'archive', type: 'Amazon S3', value: 'chat-archive', tags: { env: 'prod' } });
  await screenshot(page, 'logging-create-form');
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  const s3 = await createdId(page, 'archive');
  assert.equal(s3.state, 'ACTIVE');
  assert.deepEqual(s3.destinationConfiguration, { s3: { bucketName: 'chat-archive' } });
  assert.deepEqual(s3.tags, { env: 'prod' });
  await page.getByRole('cell', { name: s3.id, exact: true }).waitFor();
  const row = await rowOf(page, s3.id);
  assert.equal(row.Name, 'archive');
  assert.equal(row.Destination, 'S3 bucket chat-archive');
  assert.equal(row.State, 'ACTIVE');
  assert.equal(row.Tags, 'env=prod');

  await (await create(page, { name: 'cloudwatch', type: 'CloudWatch Logs', value: '/ivschat/rooms' })).getByRole('button', { name: 'Create', exact: true }).click();
  const cw = await createdId(page, 'cloudwatch');
  await (await create(page, { name: 'firehose', type: 'Kinesis Data Firehose', value: 'chat-stream' })).getByRole('button', { name: 'Create', exact: true }).click();
  const fh = await createdId(page, 'firehose');
  await page.getByRole('cell', { name: fh.id, exact: true }).waitFor();
  assert.equal((await rowOf(page, cw.id)).Destination, 'CloudWatch Logs group /ivschat/rooms');
  assert.equal((await rowOf(page, fh.id)).Destination, 'Firehose stream chat-stream');
  for (const c of [cw, fh]) assert.equal((await rowOf(page, c.id)).State, 'ACTIVE');
  await screenshot(page, 'logging-list');
  assertNoPageErrors(page);
});

test('a validation error shows next to the destination field', async () => {
  const page = await browser.newPage();
  expectHttpErrors(page, 400);
  await openLogging(page);
  const dialog = await create(page, { name: 'bad', type: 'Amazon S3', value: 'No_Such Bucket' });
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  const input = dialog.getByLabel('S3 bucket name');
  await dialog.locator('#lc-destination-error').waitFor();
  assert.equal(await input.getAttribute('aria-invalid'), 'true');
  assert.match(await dialog.locator('#lc-destination-error').innerText(), /must match the pattern/);
  assert.equal(await dialog.getByRole('alert').count(), 0);
  await screenshot(page, 'logging-validation');
  assert.equal((await api('ListLoggingConfigurations', {})).loggingConfigurations.some((c) => c.name === 'bad'), false);
  assertNoPageErrors(page);
});

test('edit the name, the destination and the tags', async () => {
  const lc = await api('CreateLoggingConfiguration', {
    name: 'to-edit',
    destinationConfiguration: { s3: { bucketName: 'before-bucket' } },
    tags: { a: '1', b: '2' },
  });
  const page = await browser.newPage();
  await openLogging(page);
  await page.getByRole('button', { name: `Edit logging configuration to-edit (${lc.id})` }).click();
  const dialog = page.getByRole('dialog', { name: 'Edit logging configuration to-edit' });
  assert.equal(await dialog.getByLabel('S3 bucket name').inputValue(), 'before-bucket');
  await dialog.getByLabel('Name', { exact: true }).fill('edited');
  await dialog.getByLabel('CloudWatch Logs').check();
  await dialog.getByLabel('Log group name').fill('edited-group');
  await dialog.getByLabel('Tag 1 value').fill('one');
  await dialog.getByRole('button', { name: 'Remove tag 2' }).click();
  await screenshot(page, 'logging-edit-form');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('status').filter({ hasText: 'edited saved' }).waitFor();
  const stored = await api('GetLoggingConfiguration', { identifier: lc.arn });
  assert.equal(stored.name, 'edited');
  assert.deepEqual(stored.destinationConfiguration, { cloudWatchLogs: { logGroupName: 'edited-group' } });
  assert.equal(stored.state, 'ACTIVE');
  assert.deepEqual(stored.tags, { a: 'one' });
  await page.getByRole('cell', { name: 'edited', exact: true }).waitFor();
  const row = await rowOf(page, lc.id);
  assert.equal(row.Destination, 'CloudWatch Logs group edited-group');
  assert.equal(row.Tags, 'a=one');
  assertNoPageErrors(page);
});

// This server settles a configuration within the call that changes it, so
// a list never shows CREATING by itself: the test makes the list answer say
// CREATING for one configuration, and the page must then ask the real
// server (GetLoggingConfiguration) until it says ACTIVE, and stop asking.
test('a transitional state is refreshed until it settles, then polling stops', async () => {
  const lc = await api('CreateLoggingConfiguration', { name: 'settling', destinationConfiguration: { firehose: { deliveryStreamName: 'settling' } } });
  const page = await browser.newPage();
  await page.route('**/ListLoggingConfigurations', async (route) => {
    const response = await route.fetch();
    const json = await response.json();
    for (const c of json.loggingConfigurations) if (c.id === lc.id) c.state = 'CREATING';
    await route.fulfill({ response, json });
  });
  const gets = [];
  page.on('request', (req) => {
    if (req.url().endsWith('/GetLoggingConfiguration')) gets.push({ at: Date.now(), body: req.postData() });
  });
  await openLogging(page);
  // First the listed state, then the settled one from GetLoggingConfiguration.
  await page.waitForFunction((id) => {
    const rows = [...document.querySelectorAll('.logging-page tbody tr')];
    return rows.some((tr) => tr.textContent.includes(id) && tr.textContent.includes('ACTIVE'));
  }, lc.id);
  assert.ok(gets.length >= 1);
  assert.ok(gets.every((g) => JSON.parse(g.body).identifier === lc.arn), 'only the transitional one is polled');
  const settledAt = gets.length;
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(gets.length, settledAt, 'no polling once settled');
  assertNoPageErrors(page);
});

test('polling waits while the page is hidden', async () => {
  const lc = await api('CreateLoggingConfiguration', { name: 'hidden', destinationConfiguration: { s3: { bucketName: 'hidden-bucket' } } });
  const page = await browser.newPage();
  await page.addInitScript(() => {
    // The page starts hidden (as a background tab would be).
    window.__hidden = true;
    Object.defineProperty(document, 'visibilityState', { get: () => (window.__hidden ? 'hidden' : 'visible') });
  });
  await page.route('**/ListLoggingConfigurations', async (route) => {
    const response = await route.fetch();
    const json = await response.json();
    for (const c of json.loggingConfigurations) if (c.id === lc.id) c.state = 'UPDATING';
    await route.fulfill({ response, json });
  });
  let gets = 0;
  page.on('request', (req) => {
    if (req.url().endsWith('/GetLoggingConfiguration')) gets++;
  });
  await openLogging(page);
  await page.getByText('UPDATING').waitFor();
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(gets, 0, 'no polling while hidden');
  await page.evaluate(() => {
    window.__hidden = false;
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await page.getByText('UPDATING').waitFor({ state: 'detached' });
  assert.ok(gets >= 1);
  assert.equal((await rowOf(page, lc.id)).State, 'ACTIVE');
  assertNoPageErrors(page);
});

test('delete: refused while a room uses it, then gone once detached', async () => {
  const lc = await api('CreateLoggingConfiguration', { name: 'in-use', destinationConfiguration: { s3: { bucketName: 'in-use' } } });
  const room = await api('CreateRoom', { name: 'uses-it', loggingConfigurationIdentifiers: [lc.arn] });
  const page = await browser.newPage();
  expectHttpErrors(page, 409);
  await openLogging(page);
  const del = page.getByRole('button', { name: `Delete logging configuration in-use (${lc.id})` });
  await del.click();
  const confirm = page.getByRole('dialog', { name: 'Delete logging configuration?' });
  await confirm.getByRole('button', { name: 'Delete' }).click();
  const alert = confirm.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.innerText(), /^ConflictException: /);
  await screenshot(page, 'logging-delete-conflict');
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await api('GetLoggingConfiguration', { identifier: lc.arn });

  await api('UpdateRoom', { identifier: room.arn, loggingConfigurationIdentifiers: [] });
  await del.click();
  await confirm.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('status').filter({ hasText: 'in-use deleted' }).waitFor();
  assert.equal(await rowOf(page, lc.id), undefined);
  await assert.rejects(api('GetLoggingConfiguration', { identifier: lc.arn }), (err) => err.code === 'ResourceNotFoundException');
  assertNoPageErrors(page);
});

test("a read-only key lists, and its create attempt shows the API's AccessDeniedException", async () => {
  const page = await browser.newPage();
  expectHttpErrors(page, 403);
  await openLogging(page, READ_ONLY_KEY);
  assert.ok((await tableRows(page)).some((r) => r.Name === 'archive'));
  const dialog = await create(page, { name: 'denied', type: 'Amazon S3', value: 'denied-bucket' });
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  const alert = dialog.getByRole('alert');
  await alert.waitFor();
  const refusal = await apiClient(server.endpoint, READ_ONLY_KEY)('CreateLoggingConfiguration', {
    name: 'denied',
    destinationConfiguration: { s3: { bucketName: 'denied-bucket' } },
  }).then(() => assert.fail('the read-only key created a configuration'), (err) => err);
  assert.equal(refusal.code, 'AccessDeniedException');
  assert.equal(await alert.innerText(), `AccessDeniedException: ${refusal.body.message}`);
  await screenshot(page, 'logging-read-only-denied');
  assertNoPageErrors(page);
});

test('readable at phone width', async () => {
  const page = await browser.newPage({ width: 390, height: 844 });
  await openLogging(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0);
  await screenshot(page, 'logging-390');
  await page.getByRole('button', { name: 'Create logging configuration' }).click();
  const box = await page.getByRole('dialog', { name: 'Create logging configuration' }).boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390, `the dialog fits: ${JSON.stringify(box)}`);
  await screenshot(page, 'logging-create-form-390');
  assertNoPageErrors(page);
});

// The picture in docs/ (see rooms.test.mjs): only with CONSOLE_UPDATE_DOCS=1.
test('docs screenshot of the Logging configurations page', async () => {
  const docsServer = await startServer();
  try {
    const call = apiClient(docsServer.endpoint, FULL_KEY);
    await call('CreateLoggingConfiguration', { name: 'archive', destinationConfiguration: { s3: { bucketName: 'chat-archive' } }, tags: { env: 'prod' } });
    await call('CreateLoggingConfiguration', { name: 'moderation', destinationConfiguration: { cloudWatchLogs: { logGroupName: '/ivschat/moderation' } } });
    await call('CreateLoggingConfiguration', { name: 'analytics', destinationConfiguration: { firehose: { deliveryStreamName: 'chat-analytics' } }, tags: { team: 'data' } });
    const page = await browser.newPage({ width: 1280, height: 800 });
    await page.emulateMedia({ colorScheme: 'light' });
    await signIn(page, docsServer.consoleUrl, FULL_KEY);
    await page.getByRole('link', { name: 'Logging configurations' }).click();
    await page.getByRole('cell', { name: 'analytics', exact: true }).waitFor();
    assert.equal((await tableRows(page)).length, 3);
    await screenshot(page, 'logging');
    if (process.env.CONSOLE_UPDATE_DOCS === '1') {
      mkdirSync(DOCS, { recursive: true });
      await page.screenshot({ path: join(DOCS, 'console-logging.png') });
    }
    assertNoPageErrors(page);
  } finally {
    await docsServer.stop();
  }
});
