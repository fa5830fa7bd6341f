// The control plane through the official AWS SDK for JavaScript v3
// (@aws-sdk/client-ivschat): every one of the 17 operations, and the typed
// errors the SDK builds from the server's error responses.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from './lib/server.mjs';
import { ID_RE, controlPlane, expectError, uniqueName } from './lib/util.mjs';

const ROOM_ARN_RE = /^arn:aws:ivschat:us-west-2:123456789012:room\/([a-zA-Z0-9]{12})$/;
const LC_ARN_RE = /^arn:aws:ivschat:us-west-2:123456789012:logging-configuration\/([a-zA-Z0-9]{12})$/;
const REVIEW_URI = 'arn:aws:lambda:us-west-2:123456789012:function:review';
const MISSING_ROOM_ARN = 'arn:aws:ivschat:us-west-2:123456789012:room/Missing00000';

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

/** Strips the SDK's $metadata so that responses can be compared with each other. */
function body({ $metadata, ...rest }) {
  return rest;
}

function assertRecentDate(value, name) {
  assert.ok(value instanceof Date, `${name} is a Date`);
  assert.ok(Math.abs(Date.now() - value.getTime()) < 60_000, `${name} (${value.toISOString()}) is close to now`);
}

async function createLoggingConfiguration(name = uniqueName('lc')) {
  return cp.createLoggingConfiguration({
    name,
    destinationConfiguration: { s3: { bucketName: 'ivschatd-test-bucket' } },
    tags: { team: 'chat' },
  });
}

describe('rooms', () => {
  let lc;
  let created;

  before(async () => {
    lc = await createLoggingConfiguration();
  });

  test('CreateRoom returns every field it was given', async () => {
    const name = uniqueName('room');
    created = await cp.createRoom({
      name,
      maximumMessageRatePerSecond: 7,
      maximumMessageLength: 321,
      messageReviewHandler: { uri: REVIEW_URI, fallbackResult: 'DENY' },
      tags: { env: 'test', owner: 'node' },
      loggingConfigurationIdentifiers: [lc.arn],
    });
    assert.equal(created.$metadata.httpStatusCode, 200);
    assert.ok(created.$metadata.requestId, 'x-amzn-RequestId surfaces as $metadata.requestId');
    const m = ROOM_ARN_RE.exec(created.arn);
    assert.ok(m, `room ARN ${created.arn}`);
    assert.equal(created.id, m[1]);
    assert.equal(created.name, name);
    assert.equal(created.maximumMessageRatePerSecond, 7);
    assert.equal(created.maximumMessageLength, 321);
    assert.deepEqual(created.messageReviewHandler, { uri: REVIEW_URI, fallbackResult: 'DENY' });
    assert.deepEqual(created.tags, { env: 'test', owner: 'node' });
    assert.deepEqual(created.loggingConfigurationIdentifiers, [lc.arn]);
    assertRecentDate(created.createTime, 'createTime');
    assert.equal(created.updateTime.getTime(), created.createTime.getTime());
  });

  test('CreateRoom applies the documented defaults', async () => {
    const room = await cp.createRoom({});
    assert.match(room.arn, ROOM_ARN_RE);
    assert.equal(room.maximumMessageRatePerSecond, 10);
    assert.equal(room.maximumMessageLength, 500);
    assert.equal(room.messageReviewHandler, undefined);
    await cp.deleteRoom({ identifier: room.arn });
  });

  test('GetRoom returns the created record', async () => {
    const got = await cp.getRoom({ identifier: created.arn });
    assert.equal(got.$metadata.httpStatusCode, 200);
    assert.deepEqual(body(got), body(created));
  });

  test('UpdateRoom changes the given fields and keeps the others', async () => {
    const name = uniqueName('renamed');
    const updated = await cp.updateRoom({
      identifier: created.arn,
      name,
      maximumMessageLength: 100,
      messageReviewHandler: { uri: '' },
      loggingConfigurationIdentifiers: [],
    });
    assert.equal(updated.arn, created.arn);
    assert.equal(updated.id, created.id);
    assert.equal(updated.name, name);
    assert.equal(updated.maximumMessageLength, 100);
    assert.equal(updated.maximumMessageRatePerSecond, 7, 'unchanged');
    assert.equal(updated.messageReviewHandler?.uri ?? '', '', 'uri "" removes the handler');
    assert.deepEqual(updated.loggingConfigurationIdentifiers ?? [], []);
    assert.deepEqual(updated.tags, { env: 'test', owner: 'node' }, 'unchanged');
    assert.equal(updated.createTime.getTime(), created.createTime.getTime());
    assert.ok(updated.updateTime >= created.updateTime, 'updateTime moves forward');

    const got = await cp.getRoom({ identifier: created.arn });
    assert.equal(got.name, name);
    assert.equal(got.maximumMessageLength, 100);
  });

  test('ListRooms filters by name and pages with maxResults/nextToken', async () => {
    const name = uniqueName('paged');
    const arns = [];
    for (let i = 0; i < 3; i++) arns.push((await cp.createRoom({ name })).arn);
    await cp.createRoom({ name: uniqueName('other') });

    const page1 = await cp.listRooms({ name, maxResults: 2 });
    assert.equal(page1.rooms.length, 2);
    assert.ok(page1.nextToken, 'a first page of a longer list has a nextToken');
    const page2 = await cp.listRooms({ name, maxResults: 2, nextToken: page1.nextToken });
    assert.equal(page2.rooms.length, 1);
    assert.equal(page2.nextToken, undefined, 'the last page has no nextToken');

    const listed = [...page1.rooms, ...page2.rooms];
    assert.deepEqual(listed.map((r) => r.arn).sort(), [...arns].sort());
    for (const r of listed) {
      assert.equal(r.name, name);
      assert.match(r.id, ID_RE);
      assert.ok(r.createTime instanceof Date && r.updateTime instanceof Date);
      assert.equal(r.maximumMessageLength, undefined, 'RoomSummary has no maximumMessage* fields');
    }
  });

  test('ListRooms filters by logging configuration', async () => {
    const own = await createLoggingConfiguration();
    const room = await cp.createRoom({ loggingConfigurationIdentifiers: [own.arn] });
    await cp.createRoom({});
    const res = await cp.listRooms({ loggingConfigurationIdentifier: own.arn });
    assert.deepEqual(res.rooms.map((r) => r.arn), [room.arn]);
    assert.deepEqual(res.rooms[0].loggingConfigurationIdentifiers, [own.arn]);
  });

  test('DeleteRoom answers 204, after which the room is gone', async () => {
    const room = await cp.createRoom({});
    const res = await cp.deleteRoom({ identifier: room.arn });
    assert.equal(res.$metadata.httpStatusCode, 204);
    const err = await expectError(() => cp.getRoom({ identifier: room.arn }));
    assert.equal(err.name, 'ResourceNotFoundException');
    assert.equal(err.$metadata.httpStatusCode, 404);
    assert.equal(err.resourceId, room.id);
  });
});

describe('logging configurations', () => {
  test('create, get, update, list and delete', async () => {
    const name = uniqueName('lc');
    const created = await createLoggingConfiguration(name);
    const m = LC_ARN_RE.exec(created.arn);
    assert.ok(m, `logging configuration ARN ${created.arn}`);
    assert.equal(created.id, m[1]);
    assert.equal(created.name, name);
    assert.equal(created.state, 'ACTIVE');
    assert.deepEqual(created.destinationConfiguration, { s3: { bucketName: 'ivschatd-test-bucket' } });
    assert.deepEqual(created.tags, { team: 'chat' });
    assertRecentDate(created.createTime, 'createTime');

    const got = await cp.getLoggingConfiguration({ identifier: created.arn });
    assert.deepEqual(body(got), body(created));

    const updated = await cp.updateLoggingConfiguration({
      identifier: created.arn,
      name: `${name}-2`,
      destinationConfiguration: { cloudWatchLogs: { logGroupName: '/ivs/chat' } },
    });
    assert.equal(updated.arn, created.arn);
    assert.equal(updated.name, `${name}-2`);
    assert.equal(updated.state, 'ACTIVE');
    assert.deepEqual(updated.destinationConfiguration, { cloudWatchLogs: { logGroupName: '/ivs/chat' } });
    assert.ok(updated.updateTime >= created.updateTime);

    const seen = [];
    let nextToken;
    do {
      const page = await cp.listLoggingConfigurations({ maxResults: 1, nextToken });
      assert.ok(page.loggingConfigurations.length <= 1, 'maxResults is honoured');
      seen.push(...page.loggingConfigurations);
      nextToken = page.nextToken;
    } while (nextToken && seen.length < 50);
    const summary = seen.find((s) => s.arn === created.arn);
    assert.ok(summary, 'the configuration is listed');
    assert.equal(summary.name, `${name}-2`);
    assert.equal(summary.state, 'ACTIVE');
    assert.deepEqual(summary.destinationConfiguration, { cloudWatchLogs: { logGroupName: '/ivs/chat' } });

    const del = await cp.deleteLoggingConfiguration({ identifier: created.arn });
    assert.equal(del.$metadata.httpStatusCode, 204);
    const err = await expectError(() => cp.getLoggingConfiguration({ identifier: created.arn }));
    assert.equal(err.name, 'ResourceNotFoundException');
    assert.equal(err.$metadata.httpStatusCode, 404);
  });

  test('deleting a configuration that a room references is a ConflictException', async () => {
    const lc = await createLoggingConfiguration();
    const room = await cp.createRoom({ loggingConfigurationIdentifiers: [lc.arn] });
    const err = await expectError(() => cp.deleteLoggingConfiguration({ identifier: lc.arn }));
    assert.equal(err.name, 'ConflictException');
    assert.equal(err.$metadata.httpStatusCode, 409);
    assert.equal(typeof err.message, 'string');

    await cp.updateRoom({ identifier: room.arn, loggingConfigurationIdentifiers: [] });
    const del = await cp.deleteLoggingConfiguration({ identifier: lc.arn });
    assert.equal(del.$metadata.httpStatusCode, 204, 'deletable once no room references it');
  });
});

describe('tags', () => {
  test('TagResource, ListTagsForResource and UntagResource on a room ARN', async () => {
    const room = await cp.createRoom({ tags: { keep: 'yes' } });
    const tagged = await cp.tagResource({ resourceArn: room.arn, tags: { a: '1', b: '2' } });
    assert.equal(tagged.$metadata.httpStatusCode, 200);

    let listed = await cp.listTagsForResource({ resourceArn: room.arn });
    assert.deepEqual(listed.tags, { keep: 'yes', a: '1', b: '2' });

    await cp.untagResource({ resourceArn: room.arn, tagKeys: ['a', 'keep'] });
    listed = await cp.listTagsForResource({ resourceArn: room.arn });
    assert.deepEqual(listed.tags, { b: '2' });

    const got = await cp.getRoom({ identifier: room.arn });
    assert.deepEqual(got.tags, { b: '2' }, 'GetRoom sees the same tags');
  });

  test('ListTagsForResource on an unknown room is a ResourceNotFoundException', async () => {
    const err = await expectError(() => cp.listTagsForResource({ resourceArn: MISSING_ROOM_ARN }));
    assert.equal(err.name, 'ResourceNotFoundException');
    assert.equal(err.$metadata.httpStatusCode, 404);
  });
});

describe('chat tokens and room actions', () => {
  let room;

  before(async () => {
    room = await cp.createRoom({ name: uniqueName('actions') });
  });

  test('CreateChatToken returns a base64url token and Date expiry times', async () => {
    const issuedAt = Date.now();
    const res = await cp.createChatToken({
      roomIdentifier: room.arn,
      userId: 'user-1',
      capabilities: ['SEND_MESSAGE', 'DELETE_MESSAGE', 'DISCONNECT_USER'],
      sessionDurationInMinutes: 30,
      attributes: { displayName: 'User One' },
    });
    assert.equal(typeof res.token, 'string');
    assert.match(res.token, /^[A-Za-z0-9_-]+$/);
    assert.ok(res.token.length >= 32, 'the token is not trivially short');
    assert.ok(res.sessionExpirationTime instanceof Date, 'sessionExpirationTime is a Date');
    assert.ok(res.tokenExpirationTime instanceof Date, 'tokenExpirationTime is a Date');
    const session = res.sessionExpirationTime.getTime() - issuedAt;
    assert.ok(Math.abs(session - 30 * 60_000) < 60_000, `session lasts 30 minutes (got ${session} ms)`);
    // tokenExpirationTime = issue + token TTL (default 60 min), capped at the
    // session's end (README, "Compatibility notes"): here the 30-minute session.
    assert.equal(res.tokenExpirationTime.getTime(), res.sessionExpirationTime.getTime(), 'token expiry is capped at the session end');

    const second = await cp.createChatToken({ roomIdentifier: room.arn, userId: 'user-1' });
    const validity = second.tokenExpirationTime.getTime() - issuedAt;
    assert.ok(Math.abs(validity - 60 * 60_000) < 60_000, `with the default 60-minute session the token is usable for 60 minutes (got ${validity} ms)`);
    assert.notEqual(second.token, res.token, 'every token is unique');
  });

  test('SendEvent returns an event id', async () => {
    const res = await cp.sendEvent({ roomIdentifier: room.arn, eventName: 'app:notice', attributes: { k: 'v' } });
    assert.equal(res.$metadata.httpStatusCode, 200);
    assert.match(res.id, ID_RE);
  });

  test('DeleteMessage returns an id', async () => {
    const res = await cp.deleteMessage({ roomIdentifier: room.arn, id: 'AbCdEf123456', reason: 'spam' });
    assert.equal(res.$metadata.httpStatusCode, 200);
    assert.match(res.id, ID_RE);
  });

  test('DisconnectUser succeeds with an empty result', async () => {
    const res = await cp.disconnectUser({ roomIdentifier: room.arn, userId: 'user-1', reason: 'bye' });
    assert.equal(res.$metadata.httpStatusCode, 200);
    assert.ok(res.$metadata.requestId);
    assert.deepEqual(body(res), {});
  });
});

describe('typed errors', () => {
  test('ValidationException carries reason and fieldList (400)', async () => {
    const err = await expectError(() => cp.createRoom({ maximumMessageLength: 501 }));
    assert.equal(err.name, 'ValidationException');
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.equal(err.reason, 'FIELD_VALIDATION_FAILED');
    assert.ok(Array.isArray(err.fieldList), 'fieldList is a list');
    assert.ok(err.fieldList.some((f) => f.name === 'maximumMessageLength' && typeof f.message === 'string'),
      `fieldList names maximumMessageLength: ${JSON.stringify(err.fieldList)}`);
  });

  test('ValidationException for an out-of-range token session duration', async () => {
    const room = await cp.createRoom({});
    const err = await expectError(() => cp.createChatToken({
      roomIdentifier: room.arn, userId: 'u', sessionDurationInMinutes: 181,
    }));
    assert.equal(err.name, 'ValidationException');
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.ok(err.fieldList?.some((f) => f.name === 'sessionDurationInMinutes'), JSON.stringify(err.fieldList));
  });

  test('ResourceNotFoundException names the missing room (404)', async () => {
    const err = await expectError(() => cp.getRoom({ identifier: MISSING_ROOM_ARN }));
    assert.equal(err.name, 'ResourceNotFoundException');
    assert.equal(err.$metadata.httpStatusCode, 404);
    assert.equal(err.resourceId, 'Missing00000');
    assert.equal(err.resourceType, 'ROOM');
    assert.ok(err.$metadata.requestId, 'errors carry a request id too');
  });

  test('ResourceNotFoundException for a token in an unknown room', async () => {
    const err = await expectError(() => cp.createChatToken({ roomIdentifier: MISSING_ROOM_ARN, userId: 'u' }));
    assert.equal(err.name, 'ResourceNotFoundException');
    assert.equal(err.$metadata.httpStatusCode, 404);
  });

  test('a wrong secret key is refused with 403', async () => {
    const bad = controlPlane(srv, {
      credentials: { accessKeyId: srv.credentials.accessKeyId, secretAccessKey: 'wrong-secret' },
      maxAttempts: 1,
    });
    try {
      const err = await expectError(() => bad.listRooms({}));
      assert.equal(err.$metadata.httpStatusCode, 403);
      assert.equal(err.name, 'InvalidSignatureException');
    } finally {
      bad.destroy();
    }
  });

  test('an unknown access key is refused with 403', async () => {
    const bad = controlPlane(srv, {
      credentials: { accessKeyId: 'AKIDUNKNOWNUNKNOWN00', secretAccessKey: 'whatever' },
      maxAttempts: 1,
    });
    try {
      const err = await expectError(() => bad.listRooms({}));
      assert.equal(err.$metadata.httpStatusCode, 403);
      assert.equal(err.name, 'UnrecognizedClientException');
    } finally {
      bad.destroy();
    }
  });
});
