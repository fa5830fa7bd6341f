// The console against a cluster: two ivschatd nodes sharing PostgreSQL and
// Redis (lib/server.mjs, startCluster). The browser uses the console of node
// A only; the other side is a chat client in Node connected to node B with a
// token minted by node B. Needs IVSCHATD_TEST_POSTGRES_URL and
// IVSCHATD_TEST_REDIS_URL (CI sets both), and is skipped without them.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
// Node 20 has no WebSocket of its own; ws is a test-only dependency, as in
// test/node.
import WebSocket from 'ws';

import { apiClient } from './lib/api-client.mjs';
import { assertNoPageErrors, launch, screenshot } from './lib/browser.mjs';
import { chatLog, joinChat, messageEntry, openRoom, waitFigure } from './lib/room-page.mjs';
import { FULL_KEY, clusterUnavailable, startCluster } from './lib/server.mjs';

// A skip message, or false (node 20 skips a test on any string, even '').
const skip = clusterUnavailable() || false;
const FRAME_TIMEOUT = 10_000;

let cluster;
let nodeA;
let nodeB;
let browser;
before(async () => {
  if (skip) return;
  cluster = await startCluster(2);
  [nodeA, nodeB] = cluster.nodes;
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await cluster?.stop();
});

/** An API operation on node's endpoint, signed with the full-access key. */
const api = (node, operation, body) => apiClient(node.endpoint, FULL_KEY)(operation, body);

/**
 * A chat client in Node on node: a token minted by that node's
 * CreateChatToken, offered as the WebSocket sub-protocol, and the IVS Chat
 * protocol's JSON frames. frame(match) resolves with the first frame
 * received (before or after the call) that match accepts.
 */
async function connectChat(node, room, userId) {
  const { token } = await api(node, 'CreateChatToken', {
    roomIdentifier: room.arn,
    userId,
    capabilities: ['SEND_MESSAGE'],
  });
  const socket = new WebSocket(node.wsUrl, token);
  const frames = [];
  const waiters = new Set();
  socket.on('message', (data) => {
    const f = JSON.parse(data.toString());
    frames.push(f);
    for (const w of waiters) w.check(f);
  });
  socket.on('close', (code, reason) => {
    for (const w of waiters) w.fail(new Error(`${userId}'s connection closed (${code} ${reason})`));
  });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return {
    frames,
    /** Sends a SEND_MESSAGE request and returns its RequestId. */
    send(content) {
      const requestId = randomUUID();
      socket.send(JSON.stringify({ Action: 'SEND_MESSAGE', Content: content, RequestId: requestId }));
      return requestId;
    },
    frame(match, what) {
      const seen = frames.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = {
          check: (f) => { if (match(f)) done(null, f); },
          fail: (err) => done(err),
        };
        const timer = setTimeout(() => done(new Error(
          `${userId} did not receive ${what} in ${FRAME_TIMEOUT} ms; frames: ${JSON.stringify(frames)}`)), FRAME_TIMEOUT);
        function done(err, f) {
          clearTimeout(timer);
          waiters.delete(w);
          if (err) reject(err);
          else resolve(f);
        }
        waiters.add(w);
      });
    },
    async close() {
      if (socket.readyState === WebSocket.CLOSED) return;
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.close(1000);
      await closed;
    },
  };
}

test('messages cross nodes both ways: the console\'s chat panel on node A and a client on node B', { skip }, async () => {
  // Proves that a viewer joined through the console served by node A gets
  // what a client of node B sends, and that what the console sends through
  // node A reaches node B's client, through Redis; the room, created on
  // node A, is known to node B through PostgreSQL, and node B's token
  // opens there through the shared key ring.
  const room = await api(nodeA, 'CreateRoom', { name: 'cluster-chat' });
  const page = await openRoom(browser, nodeA.consoleUrl, room);
  await joinChat(page, 'viewer-a');
  const clientB = await connectChat(nodeB, room, 'client-b');

  clientB.send('hello from node B');
  await messageEntry(page, 'hello from node B').waitFor();

  await page.getByLabel('Message', { exact: true }).fill('hello from node A');
  await page.getByLabel('Message', { exact: true }).press('Enter');
  const got = await clientB.frame((f) => f.Type === 'MESSAGE' && f.Content === 'hello from node A',
    'the console\'s message');
  assert.equal(got.Sender.UserId, 'viewer-a');
  // Both ends saw the same two messages in the same order, and no errors.
  await messageEntry(page, 'hello from node A').waitFor();
  assert.equal(await chatLog(page).locator('li.chat-error').count(), 0);
  assert.deepEqual(clientB.frames.map((f) => `${f.Type} ${f.Content}`),
    ['MESSAGE hello from node B', 'MESSAGE hello from node A']);
  const entries = await chatLog(page).locator('li.chat-message').allInnerTexts();
  assert.equal(entries.length, 2);
  assert.match(entries[0], /^client-b\b[\s\S]*hello from node B/);
  assert.match(entries[1], /^viewer-a\b[\s\S]*hello from node A/);
  await screenshot(page, 'cluster-chat');

  await clientB.close();
  await page.getByRole('button', { name: 'Leave' }).click();
  await page.locator('#chat-status', { hasText: 'You left the room.' }).waitFor();
  assertNoPageErrors(page);
  await page.close();
});

test('the room page on node A counts the connections of both nodes', { skip }, async () => {
  // Proves that the room page's live figures (GetRoomStats and
  // ListRoomConnections, asked of node A) are the cluster's: one connection
  // on node A (the console's chat panel) and two on node B read as 3
  // connections of 3 users, where either node alone has 1 or 2, and the
  // connections table names the node each is on. When node B's clients
  // leave, the figures fall back to node A's one.
  const room = await api(nodeA, 'CreateRoom', { name: 'cluster-figures' });
  const [{ node: idA }, { node: idB }] = await Promise.all(
    [nodeA, nodeB].map((n) => api(n, 'GetServerStatus', {})),
  );
  assert.notEqual(idA, idB);
  const page = await openRoom(browser, nodeA.consoleUrl, room);
  await waitFigure(page, 'connections', 0);
  await joinChat(page, 'viewer-a');
  const clientsB = await Promise.all(['client-b1', 'client-b2'].map((u) => connectChat(nodeB, room, u)));

  await waitFigure(page, 'connections', 3);
  await waitFigure(page, 'users', 3);
  const figures = page.getByRole('region', { name: 'Live figures' });
  await figures.getByText(/from 2 nodes/).waitFor();
  const table = page.getByRole('region', { name: /Open connections/ });
  const rowOf = (userId) => table.getByRole('row').filter({ has: page.getByRole('cell', { name: userId, exact: true }) });
  await rowOf('viewer-a').getByRole('cell', { name: idA, exact: true }).waitFor();
  await rowOf('client-b1').getByRole('cell', { name: idB, exact: true }).waitFor();
  await rowOf('client-b2').getByRole('cell', { name: idB, exact: true }).waitFor();
  await screenshot(page, 'cluster-figures');

  await Promise.all(clientsB.map((c) => c.close()));
  await waitFigure(page, 'connections', 1);
  await waitFigure(page, 'users', 1);
  assert.equal(await rowOf('client-b1').count(), 0);

  await page.getByRole('button', { name: 'Leave' }).click();
  await page.locator('#chat-status', { hasText: 'You left the room.' }).waitFor();
  assertNoPageErrors(page);
  await page.close();
});
