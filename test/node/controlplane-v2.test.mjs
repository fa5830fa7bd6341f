// The control plane through the AWS SDK for JavaScript v2 (AWS.Ivschat), whose
// wire habits differ from v3 (signed X-Amz-Content-Sha256, Connection: close).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from './lib/server.mjs';
import { ID_RE, expectError, uniqueName } from './lib/util.mjs';

// v2 prints a maintenance-mode notice when loaded unless told not to.
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
const { default: AWS } = await import('aws-sdk');

let srv;
let ivschat;

before(async () => {
  srv = await startServer();
  ivschat = new AWS.Ivschat({
    endpoint: srv.endpoint,
    region: srv.region,
    credentials: new AWS.Credentials(srv.credentials.accessKeyId, srv.credentials.secretAccessKey),
    maxRetries: 0,
  });
});

after(async () => {
  await srv?.stop();
});

test('room round trip: create, tag, list tags, untag, get, list, token, delete', async () => {
  const name = uniqueName('v2');
  const room = await ivschat.createRoom({ name, maximumMessageLength: 200, tags: { owner: 'v2' } }).promise();
  assert.match(room.arn, /^arn:aws:ivschat:us-west-2:123456789012:room\/[a-zA-Z0-9]{12}$/);
  assert.match(room.id, ID_RE);
  assert.equal(room.name, name);
  assert.equal(room.maximumMessageLength, 200);
  assert.equal(room.maximumMessageRatePerSecond, 10);
  assert.ok(room.createTime instanceof Date);

  await ivschat.tagResource({ resourceArn: room.arn, tags: { a: '1', b: '2' } }).promise();
  let tags = await ivschat.listTagsForResource({ resourceArn: room.arn }).promise();
  assert.deepEqual(tags.tags, { owner: 'v2', a: '1', b: '2' });

  await ivschat.untagResource({ resourceArn: room.arn, tagKeys: ['a', 'owner'] }).promise();
  tags = await ivschat.listTagsForResource({ resourceArn: room.arn }).promise();
  assert.deepEqual(tags.tags, { b: '2' });

  const got = await ivschat.getRoom({ identifier: room.arn }).promise();
  assert.equal(got.arn, room.arn);
  assert.equal(got.name, name);
  assert.equal(got.maximumMessageLength, 200);
  assert.deepEqual(got.tags, { b: '2' });

  const listed = await ivschat.listRooms({ name, maxResults: 10 }).promise();
  assert.deepEqual(listed.rooms.map((r) => r.arn), [room.arn]);

  const token = await ivschat.createChatToken({
    roomIdentifier: room.arn, userId: 'v2-user', capabilities: ['SEND_MESSAGE'],
  }).promise();
  assert.match(token.token, /^[A-Za-z0-9_-]+$/);
  assert.ok(token.tokenExpirationTime instanceof Date);
  assert.ok(token.sessionExpirationTime instanceof Date);
  assert.ok(token.sessionExpirationTime > new Date());

  await ivschat.deleteRoom({ identifier: room.arn }).promise();
  const after = await ivschat.listRooms({ name }).promise();
  assert.deepEqual(after.rooms, []);
});

test('a missing room surfaces as err.code ResourceNotFoundException', async () => {
  const err = await expectError(() => ivschat.getRoom({
    identifier: 'arn:aws:ivschat:us-west-2:123456789012:room/Missing00000',
  }).promise());
  assert.equal(err.code, 'ResourceNotFoundException');
  assert.equal(err.statusCode, 404);
});
