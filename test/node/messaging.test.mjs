// The WebSocket messaging endpoint through the official amazon-ivs-chat-messaging
// client (issue 3 acceptance): ChatRoom pointed at ws://127.0.0.1:PORT with
// tokens minted by @aws-sdk/client-ivschat CreateChatToken.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { DeleteMessageRequest, DisconnectUserRequest, SendMessageRequest } from 'amazon-ivs-chat-messaging';

import { OpenClients } from './lib/chat.mjs';
import { startServer } from './lib/server.mjs';
import { ID_RE, controlPlane, expectError, uniqueName, withTimeout } from './lib/util.mjs';

let srv;
let cp;
const clients = new OpenClients();

before(async () => {
  srv = await startServer();
  cp = controlPlane(srv);
});

afterEach(() => clients.closeAll());

after(async () => {
  cp?.destroy();
  await srv?.stop();
});

async function newRoom() {
  return cp.createRoom({ name: uniqueName('ws') });
}

/** A connected ChatClient in `room`; closed after the test. */
async function join(room, userId, capabilities = [], attributes = undefined) {
  const c = await clients.join({ url: srv.wsUrl, cp, roomArn: room.arn, userId, capabilities, attributes });
  assert.equal(c.room.state, 'connected');
  return c;
}

describe('amazon-ivs-chat-messaging ChatRoom', () => {
  test('connects and disconnects', async () => {
    const room = await newRoom();
    const alice = await join(room, 'alice');
    assert.equal(alice.tokensIssued, 1);
    assert.deepEqual(alice.received.map((e) => e.name), ['connecting', 'connect']);

    alice.room.disconnect();
    const reason = await alice.waitFor('disconnect');
    assert.equal(reason, 'clientDisconnect');
    assert.equal(alice.room.state, 'disconnected');
  });

  test('sendMessage resolves on the echo and the message reaches the other clients', async () => {
    const room = await newRoom();
    const alice = await join(room, 'alice', ['SEND_MESSAGE'], { displayName: 'Alice' });
    const bob = await join(room, 'bob');

    const request = new SendMessageRequest('hello, room', { color: 'blue' });
    const msg = await withTimeout(alice.room.sendMessage(request), 'the sendMessage echo');
    assert.match(msg.id, ID_RE);
    assert.equal(msg.content, 'hello, room');
    assert.equal(msg.requestId, request.requestId);
    assert.deepEqual(msg.attributes, { color: 'blue' });
    assert.equal(msg.sender.userId, 'alice');
    assert.deepEqual(msg.sender.attributes, { displayName: 'Alice' });
    assert.ok(msg.sendTime instanceof Date && !Number.isNaN(msg.sendTime.getTime()));
    assert.ok(Math.abs(Date.now() - msg.sendTime.getTime()) < 60_000, 'sendTime is close to now');

    const seen = await bob.waitFor('message', (m) => m.id === msg.id);
    assert.equal(seen.content, 'hello, room');
    assert.equal(seen.sender.userId, 'alice');
    assert.deepEqual(seen.attributes, { color: 'blue' });
    assert.equal(seen.sendTime.getTime(), msg.sendTime.getTime());
  });

  test('deleteMessage resolves and every client gets messageDelete', async () => {
    const room = await newRoom();
    const alice = await join(room, 'alice', ['SEND_MESSAGE']);
    const mod = await join(room, 'moderator', ['DELETE_MESSAGE']);
    const bob = await join(room, 'bob');

    const msg = await withTimeout(alice.room.sendMessage(new SendMessageRequest('delete me')), 'the message echo');
    const request = new DeleteMessageRequest(msg.id, 'off-topic');
    const ev = await withTimeout(mod.room.deleteMessage(request), 'the deleteMessage event');
    assert.match(ev.id, ID_RE);
    assert.equal(ev.messageId, msg.id);
    assert.equal(ev.reason, 'off-topic');
    assert.equal(ev.requestId, request.requestId);
    assert.ok(ev.sendTime instanceof Date);

    for (const c of [alice, bob]) {
      const seen = await c.waitFor('messageDelete', (e) => e.id === ev.id);
      assert.equal(seen.messageId, msg.id);
      assert.equal(seen.reason, 'off-topic');
    }
  });

  test('disconnectUser resolves, the room gets userDisconnect and the target is disconnected', async () => {
    const room = await newRoom();
    const mod = await join(room, 'moderator', ['DISCONNECT_USER']);
    const bob = await join(room, 'bob');
    const carol = await join(room, 'carol');

    const request = new DisconnectUserRequest('carol', 'be nice');
    const ev = await withTimeout(mod.room.disconnectUser(request), 'the disconnectUser event');
    assert.match(ev.id, ID_RE);
    assert.equal(ev.userId, 'carol');
    assert.equal(ev.reason, 'be nice');
    assert.equal(ev.requestId, request.requestId);

    const seenByBob = await bob.waitFor('userDisconnect', (e) => e.id === ev.id);
    assert.equal(seenByBob.userId, 'carol');

    const reason = await carol.waitFor('disconnect');
    assert.equal(reason, 'serverDisconnect', 'a moderated user sees a server-initiated disconnect');
    assert.equal(carol.room.state, 'disconnected');
    assert.equal(carol.tokensIssued, 1, 'the client did not try to reconnect');
    assert.equal(bob.room.state, 'connected', 'other users stay connected');
    assert.equal(mod.room.state, 'connected');
  });

  test('control-plane SendEvent arrives as an event', async () => {
    const room = await newRoom();
    const bob = await join(room, 'bob');

    const sent = await cp.sendEvent({
      roomIdentifier: room.arn, eventName: 'app:announcement', attributes: { text: 'welcome' },
    });
    const ev = await bob.waitFor('event', (e) => e.id === sent.id);
    assert.equal(ev.eventName, 'app:announcement');
    assert.deepEqual(ev.attributes, { text: 'welcome' });
    assert.ok(ev.sendTime instanceof Date);
  });

  test('control-plane DeleteMessage and DisconnectUser reach the room', async () => {
    const room = await newRoom();
    const bob = await join(room, 'bob');
    const carol = await join(room, 'carol');

    const del = await cp.deleteMessage({ roomIdentifier: room.arn, id: 'AbCdEf123456', reason: 'api' });
    const seen = await bob.waitFor('messageDelete', (e) => e.id === del.id);
    assert.equal(seen.messageId, 'AbCdEf123456');
    assert.equal(seen.reason, 'api');

    await cp.disconnectUser({ roomIdentifier: room.arn, userId: 'carol', reason: 'api kick' });
    const kicked = await bob.waitFor('userDisconnect', (e) => e.userId === 'carol');
    assert.equal(kicked.reason, 'api kick');
    assert.equal(await carol.waitFor('disconnect'), 'serverDisconnect');
  });

  test('sendMessage without SEND_MESSAGE is rejected with error code 403', async () => {
    const room = await newRoom();
    const viewer = await join(room, 'viewer', ['DELETE_MESSAGE']);

    const request = new SendMessageRequest('not allowed');
    const err = await expectError(() => withTimeout(viewer.room.sendMessage(request), 'the 403 error'));
    assert.equal(err.errorCode, 403, `got ${JSON.stringify(err)}`);
    assert.equal(err.requestId, request.requestId);
    assert.equal(typeof err.errorMessage, 'string');
    assert.equal(viewer.room.state, 'connected', 'an error does not end the connection');
    assert.equal(viewer.received.filter((e) => e.name === 'message').length, 0, 'nothing was broadcast');
  });
});
