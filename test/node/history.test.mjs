// Recent messages on join (the ivschatd:history room tag, issue 12) through
// the official amazon-ivs-chat-messaging client: a late joiner's `message`
// listener receives the room's last N messages in order, then live ones,
// none twice; deleted messages are not replayed; in cluster mode messages
// sent through one node replay to a joiner on another.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { DeleteMessageRequest, SendMessageRequest } from 'amazon-ivs-chat-messaging';

import { OpenClients } from './lib/chat.mjs';
import { clusterUnavailable, startCluster } from './lib/cluster.mjs';
import { startServer } from './lib/server.mjs';
import { controlPlane, uniqueName, withTimeout } from './lib/util.mjs';

const clients = new OpenClients();

afterEach(() => clients.closeAll());

const join = (srv, cp, room, userId, capabilities = []) =>
  clients.join({ url: srv.wsUrl, cp, roomArn: room.arn, userId, capabilities });

async function sendAll(sender, contents) {
  const sent = [];
  for (const content of contents) {
    sent.push(await withTimeout(sender.room.sendMessage(new SendMessageRequest(content)), `the echo of ${content}`));
  }
  return sent;
}

/** The ids and contents of the messages c's `message` listener received, in order. */
function messages(c) {
  return c.received.filter((e) => e.name === 'message').map((e) => `${e.payload.id}:${e.payload.content}`);
}

const label = (msgs) => msgs.map((m) => `${m.id}:${m.content}`);

/**
 * Waits until `viewer` got `live` (sent after it joined) and checks that its
 * `message` listener saw exactly `replay` and then `live`: in order, none twice.
 */
async function expectStream(viewer, sender, replay, liveContent) {
  const [live] = await sendAll(sender, [liveContent]);
  await viewer.waitFor('message', (m) => m.id === live.id);
  assert.deepEqual(messages(viewer), label([...replay, live]));
  return live;
}

describe('recent messages on join, single node', () => {
  let srv;
  let cp;
  before(async () => {
    srv = await startServer();
    cp = controlPlane(srv);
  });
  after(async () => {
    cp?.destroy();
    await srv?.stop();
  });

  test('a late joiner receives the last N messages, then live ones; deleted ones are not replayed', async () => {
    const room = await cp.createRoom({ name: uniqueName('history'), tags: { 'ivschatd:history': '3' } });
    const alice = await join(srv, cp, room, 'alice', ['SEND_MESSAGE', 'DELETE_MESSAGE']);
    const sent = await sendAll(alice, ['m1', 'm2', 'm3', 'm4', 'm5']);
    // m4 deleted by a moderator's client.
    await withTimeout(alice.room.deleteMessage(new DeleteMessageRequest(sent[3].id, 'spam')), 'the delete event');

    const bob = await join(srv, cp, room, 'bob');
    const m6 = await expectStream(bob, alice, [sent[1], sent[2], sent[4]], 'm6');

    // m5 deleted through the control plane: the next joiner gets m2, m3, m6.
    await cp.deleteMessage({ roomIdentifier: room.arn, id: sent[4].id });
    await bob.waitFor('messageDelete', (e) => e.messageId === sent[4].id);
    const carol = await join(srv, cp, room, 'carol');
    await expectStream(carol, alice, [sent[1], sent[2], m6], 'm7');
  });

  test('a tag set with TagResource applies to later connections, and the room keeps its history with nobody connected', async () => {
    const room = await cp.createRoom({ name: uniqueName('history') });
    await cp.tagResource({ resourceArn: room.arn, tags: { 'ivschatd:history': '2' } });
    const alice = await join(srv, cp, room, 'alice', ['SEND_MESSAGE']);
    const sent = await sendAll(alice, ['a', 'b', 'c']);
    alice.close();
    await alice.waitFor('disconnect');

    const bob = await join(srv, cp, room, 'bob', ['SEND_MESSAGE']);
    await expectStream(bob, bob, sent.slice(1), 'd');

    await cp.untagResource({ resourceArn: room.arn, tagKeys: ['ivschatd:history'] });
    const carol = await join(srv, cp, room, 'carol');
    await expectStream(carol, bob, [], 'e');
  });
});

describe('recent messages on join, two nodes (PostgreSQL + Redis)', () => {
  const skip = clusterUnavailable();
  let cluster;
  let cpA;
  before(async () => {
    if (skip) return;
    cluster = await startCluster(2);
    cpA = controlPlane(cluster.nodes[0]);
  });
  after(async () => {
    cpA?.destroy();
    await cluster?.stop();
  });

  test('messages sent through node A replay to a joiner on node B', { skip: skip || false }, async () => {
    const [a, b] = cluster.nodes;
    const room = await cpA.createRoom({ name: uniqueName('history'), tags: { 'ivschatd:history': '10' } });
    const alice = await join(a, cpA, room, 'alice', ['SEND_MESSAGE', 'DELETE_MESSAGE']);
    const sent = await sendAll(alice, ['x1', 'x2', 'x3', 'x4']);
    await withTimeout(alice.room.deleteMessage(new DeleteMessageRequest(sent[1].id)), 'the delete event');

    const bob = await join(b, cpA, room, 'bob');
    const x5 = await expectStream(bob, alice, [sent[0], sent[2], sent[3]], 'x5');
    // A second joiner on B is served from B's own copy, which now has x5.
    const carol = await join(b, cpA, room, 'carol');
    await expectStream(carol, alice, [sent[0], sent[2], sent[3], x5], 'x6');
  });
});
