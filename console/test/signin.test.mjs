// Signing in to the console in a real browser against the real server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertNoPageErrors, expectHttpErrors, launch, screenshot, signIn } from './lib/browser.mjs';
import { FULL_KEY, READ_ONLY_KEY, TOKEN_ONLY_KEY, startServer } from './lib/server.mjs';

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

const STORAGE_KEY = 'ivschatd.console.credentials';

test('the sign-in form, then the Rooms page after signing in', async () => {
  const page = await browser.newPage();
  await page.goto(server.consoleUrl);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await screenshot(page, 'signin');
  await signIn(page, server.consoleUrl, FULL_KEY);
  await page.getByRole('heading', { level: 1, name: 'Rooms' }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'Rooms' }).getAttribute('aria-current'), 'page');
  assert.match(await page.title(), /^Rooms/);
  const stored = JSON.parse(await page.evaluate((k) => sessionStorage.getItem(k), STORAGE_KEY));
  assert.equal(stored.accessKeyId, FULL_KEY.accessKeyId);
  // Not in localStorage or cookies: only sessionStorage.
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.deepEqual(await page.context().cookies(), []);
  await screenshot(page, 'rooms-placeholder');

  // The navigation routes by the fragment; a reload keeps the session.
  await page.getByRole('link', { name: 'Logging configurations' }).click();
  await page.getByRole('heading', { level: 1, name: 'Logging configurations' }).waitFor();
  assert.match(page.url(), /#\/logging$/);
  await page.getByRole('link', { name: 'Server' }).click();
  await page.getByRole('heading', { level: 1, name: 'Server' }).waitFor();
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'Server' }).waitFor();
  assertNoPageErrors(page);
});

test('a wrong secret shows an error on the form and does not sign in', async () => {
  const page = await browser.newPage();
  expectHttpErrors(page, 403);
  await page.goto(server.consoleUrl);
  await page.getByLabel('Access key ID').fill(FULL_KEY.accessKeyId);
  await page.getByLabel('Secret access key').fill('definitely-not-the-secret');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.innerText(), /secret access key is wrong/);
  assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), STORAGE_KEY), null);
  assert.equal(await page.getByRole('navigation', { name: 'Main' }).count(), 0);
  await screenshot(page, 'signin-wrong-secret');
  assertNoPageErrors(page);
});

test('an unknown access key ID shows an error on the form', async () => {
  const page = await browser.newPage();
  expectHttpErrors(page, 403);
  await page.goto(server.consoleUrl);
  await page.getByLabel('Access key ID').fill('AKIDNOBODYHASTHIS');
  await page.getByLabel('Secret access key').fill(FULL_KEY.secretAccessKey);
  // The keyboard alone: Enter in the form submits it.
  await page.getByLabel('Secret access key').press('Enter');
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /access key ID is not known/);
  assertNoPageErrors(page);
});

test('a read-only key signs in', async () => {
  const page = await browser.newPage();
  await signIn(page, server.consoleUrl, READ_ONLY_KEY);
  await page.getByRole('heading', { level: 1, name: 'Rooms' }).waitFor();
  assertNoPageErrors(page);
});

// Its ListRooms is refused (AccessDeniedException), so the signature was
// good: the key signs in, and its pages show the refusals as they come.
test('a key whose policy refuses ListRooms still signs in', async () => {
  const page = await browser.newPage();
  expectHttpErrors(page, 403);
  await signIn(page, server.consoleUrl, TOKEN_ONLY_KEY);
  await page.getByRole('heading', { level: 1, name: 'Rooms' }).waitFor();
  assertNoPageErrors(page);
});

test('the harness fails a test on errors the page logs', async () => {
  const page = await browser.newPage();
  await page.goto(server.consoleUrl);
  await page.evaluate(() => {
    console.error('provoked');
    setTimeout(() => { throw new Error('provoked too'); });
  });
  for (const deadline = Date.now() + 5000; page.errors.length < 2 && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.throws(() => assertNoPageErrors(page), /console\.error: provoked[\s\S]*uncaught: provoked too/);
});

test('sign out clears sessionStorage and shows the form again', async () => {
  const page = await browser.newPage();
  await signIn(page, server.consoleUrl, FULL_KEY);
  await page.evaluate(() => sessionStorage.setItem('ivschatd.console.other', 'x'));
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await page.reload();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  assertNoPageErrors(page);
});

test('readable at phone width', async () => {
  const page = await browser.newPage({ width: 390, height: 844 });
  await signIn(page, server.consoleUrl, FULL_KEY);
  await page.getByRole('heading', { level: 1, name: 'Rooms' }).waitFor();
  // Nothing wider than the screen: no sideways scrolling of the page.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0);
  await screenshot(page, 'rooms-placeholder-390');
  assertNoPageErrors(page);
});
