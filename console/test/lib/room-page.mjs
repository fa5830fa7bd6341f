// The room detail page as the browser tests drive it: open it signed in,
// wait for a live figure, join its chat panel and find entries in its log.
// Shared by room.test.mjs and cluster.test.mjs.
import { signIn } from './browser.mjs';
import { FULL_KEY } from './server.mjs';

// Waits are for the page's 3 s refresh, with room for a slow CI machine.
export const FIGURE_TIMEOUT = 15_000;

/**
 * Opens room ({id, name}) in a new tab of browser, signed in to the console
 * at consoleUrl with key; resolves when the page shows the room.
 */
export async function openRoom(browser, consoleUrl, room, { key = FULL_KEY, viewport } = {}) {
  const page = await browser.newPage(viewport);
  await signIn(page, consoleUrl, key);
  await page.goto(`${consoleUrl}#/rooms/${room.id}`);
  await page.getByRole('heading', { level: 1, name: `Room ${room.name}` }).waitFor();
  return page;
}

/** Waits until the live figure reads value (a number, or a RegExp source). */
export async function waitFigure(page, name, value) {
  const pattern = value instanceof RegExp ? value.source : `^${value}$`;
  await page.waitForFunction(
    ([n, p]) => new RegExp(p).test(document.querySelector(`dd[data-figure="${n}"]`)?.textContent ?? ''),
    [name, pattern],
    { timeout: FIGURE_TIMEOUT },
  );
}

/** Joins the chat panel as userId with the given capabilities (SEND_MESSAGE is checked by default). */
export async function joinChat(page, userId, caps = [], attrs = {}) {
  await page.getByLabel('User ID', { exact: true }).fill(userId);
  for (const c of caps) await page.getByRole('checkbox', { name: c }).check();
  for (const [k, v] of Object.entries(attrs)) {
    await page.getByRole('button', { name: 'Add token attribute' }).click();
    await page.getByLabel(/^Token attribute \d+ key$/).last().fill(k);
    await page.getByLabel(/^Token attribute \d+ value$/).last().fill(v);
  }
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await page.locator('#chat-status', { hasText: `Connected as ${userId}.` }).waitFor();
}

/** The chat panel's log of frames. */
export const chatLog = (page) => page.getByRole('list', { name: 'Chat frames' });

/** The log's entry of the message with this text. */
export const messageEntry = (page, text) => chatLog(page).locator('li.chat-message', { hasText: text });
