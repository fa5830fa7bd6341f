// Live viewer counts (issue 12) through the official amazon-ivs-chat-messaging
// client: a room tagged ivschatd:viewer-count-interval receives
// ivschatd:VIEWER_COUNT events that the client's `event` listener delivers
// like any other event. The interval is the real one, 5 s (the tag's least).
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { OpenClients } from './lib/chat.mjs';
import { startServer } from './lib/server.mjs';
import { ID_RE, controlPlane, expectError, uniqueName } from './lib/util.mjs';

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

const join = (room, userId) => clients.join({ url: srv.wsUrl, cp, roomArn: room.arn, userId });

const isCount = (e) => e.eventName === 'ivschatd:VIEWER_COUNT';

describe('ivschatd:VIEWER_COUNT', () => {
  test('reaches the event listener with the room\'s figures, every interval', async () => {
    const room = await cp.createRoom({
      name: uniqueName('viewers'),
      tags: { 'ivschatd:viewer-count-interval': '5' },
    });
    const alice = await join(room, 'alice');
    await join(room, 'alice');
    const bob = await join(room, 'bob');

    // The first event may predate the later connections; wait for one that
    // counts all three, then for the next one, an interval later.
    const full = (e) => isCount(e) && e.attributes.connections === '3';
    const first = await bob.waitFor('event', full, 12_000);
    assert.match(first.id, ID_RE);
    assert.deepEqual(first.attributes, { connections: '3', users: '2' });
    assert.ok(first.sendTime instanceof Date);
    assert.equal(first.requestId, ''); // as on a control-plane SendEvent's event

    const next = await bob.waitFor('event', (e) => full(e) && e.id !== first.id, 8_000);
    const gap = next.sendTime - first.sendTime;
    assert.ok(gap >= 4_500 && gap < 7_000, `events ${gap} ms apart, want about 5000`);
    // Every connection got the same events.
    assert.ok(alice.received.some((e) => e.name === 'event' && e.payload.id === next.id));
  });

  test('a bad interval is refused, naming the tag', async () => {
    const err = await expectError(() => cp.createRoom({ tags: { 'ivschatd:viewer-count-interval': '4' } }));
    assert.equal(err.name, 'ValidationException');
    assert.equal(err.fieldList[0].name, 'tags.ivschatd:viewer-count-interval');
  });
});
