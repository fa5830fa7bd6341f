// Headless Chromium for the console's end-to-end tests: Debian's chromium
// (/usr/bin/chromium, or CHROMIUM_PATH) driven by playwright-core, with a
// fresh profile per launch. Every page's console errors, uncaught
// exceptions and failed requests are collected; assertNoPageErrors fails the
// test on any.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ARTEFACTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../test-artefacts');

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/**
 * Launches Chromium on a fresh profile (--user-data-dir), removed again by
 * close(). newPage(viewport) opens a tab, which has its own sessionStorage
 * and so its own sign-in, and records its errors in page.errors.
 */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'console-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 800 },
  });
  // The persistent context has one default page; tests open their own.
  for (const p of context.pages()) await p.close();
  const pages = [];
  return {
    context,
    /** @param {{width?: number, height?: number}} [viewport] */
    async newPage(viewport) {
      const page = await context.newPage();
      if (viewport) await page.setViewportSize({ width: viewport.width ?? 1280, height: viewport.height ?? 800 });
      watch(page);
      pages.push(page);
      return page;
    },
    pages,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

function watch(page) {
  page.errors = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.errors.push(`console.error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => page.errors.push(`uncaught: ${err.message}`));
  page.on('requestfailed', (req) => {
    // A navigation away aborts what was in flight; that is no fault.
    if (req.failure()?.errorText !== 'net::ERR_ABORTED') page.errors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`);
  });
  // A refused call (403, 400) is logged by Chromium as a console error
  // ("Failed to load resource"), and so is a refused WebSocket handshake
  // ("Unexpected response code: 403"). Tests that provoke one on purpose say
  // so with expectHttpErrors(page, status).
  page.expectedStatuses = new Set();
}

/** Lets the page log failed loads and WebSocket handshakes with these statuses (a refusal the test provokes). */
export function expectHttpErrors(page, ...statuses) {
  for (const s of statuses) page.expectedStatuses.add(s);
}

/** Fails the test on any error the page logged. */
export function assertNoPageErrors(page) {
  const errors = page.errors.filter((e) => {
    const m =
      /Failed to load resource: the server responded with a status of (\d+)/.exec(e) ??
      /WebSocket connection to .* failed: .*Unexpected response code: (\d+)/.exec(e);
    return !(m && page.expectedStatuses.has(Number(m[1])));
  });
  assert.deepEqual(errors, [], `errors on the page:\n${errors.join('\n')}`);
}

/** Saves a full-page PNG as test-artefacts/<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(ARTEFACTS, { recursive: true });
  const path = join(ARTEFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Opens the console and signs in with key ({accessKeyId, secretAccessKey});
 * resolves when the app shell (the main navigation) is shown.
 */
export async function signIn(page, consoleUrl, key) {
  await page.goto(consoleUrl);
  await page.getByLabel('Access key ID').fill(key.accessKeyId);
  await page.getByLabel('Secret access key').fill(key.secretAccessKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}
