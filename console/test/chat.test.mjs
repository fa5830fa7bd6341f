// The live chat panel's protocol client (src/chat.ts) under Node: frame
// parsing against the spec's captured frames and malformed ones, the
// requests it writes, and the connection's life with a fake socket.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { importSource } from './lib/signer.mjs';

const chat = await importSource('chat.ts');

describe('parseFrame', () => {
  test('a MESSAGE as the spec captures it', () => {
    const f = chat.parseFrame(
      '{"Type":"MESSAGE","Id":"WhO6MW6iRdS5","RequestId":"318fd00d-b456-4bf4-8624-db3258784d29",' +
        '"Attributes":{"username":"gleningp"},"Content":"bbiab!","SendTime":"2023-01-05T14:33:32.894089757Z",' +
        '"Sender":{"UserId":"75758272-f3f2-4f65-83c5-9b8f144116b8","Attributes":{}}}',
    );
    assert.deepEqual(f, {
      type: 'MESSAGE',
      id: 'WhO6MW6iRdS5',
      requestId: '318fd00d-b456-4bf4-8624-db3258784d29',
      content: 'bbiab!',
      attributes: { username: 'gleningp' },
      sendTime: '2023-01-05T14:33:32.894089757Z',
      sender: { userId: '75758272-f3f2-4f65-83c5-9b8f144116b8', attributes: {} },
    });
  });

  test('an aws:DELETE_MESSAGE event names the message by MessageId or the older MessageID', () => {
    const both = chat.parseFrame(
      '{"Type":"EVENT","Id":"1OjMY6p8h4uv","RequestId":"","EventName":"aws:DELETE_MESSAGE",' +
        '"Attributes":{"MessageId":"I4fme01f7HYM","MessageID":"I4fme01f7HYM","Reason":"spam"},"SendTime":"2022-10-14T20:08:11.258800067Z"}',
    );
    assert.equal(both.type, 'EVENT');
    assert.equal(chat.deletedMessageId(both), 'I4fme01f7HYM');
    assert.equal(chat.disconnectedUserId(both), undefined);
    const old = chat.parseFrame(
      '{"Type":"EVENT","Id":"x","EventName":"aws:DELETE_MESSAGE","Attributes":{"MessageID":"Old123456789"},"SendTime":"2022-10-14T20:08:11Z"}',
    );
    assert.equal(old.requestId, '', 'an absent RequestId reads as ""');
    assert.equal(chat.deletedMessageId(old), 'Old123456789');
  });

  test('an aws:DISCONNECT_USER event names the user', () => {
    const f = chat.parseFrame(
      '{"Type":"EVENT","Id":"b4aYjMZyU8bo","RequestId":"","EventName":"aws:DISCONNECT_USER",' +
        '"Attributes":{"Reason":"Be nice!","UserId":"42fb"},"SendTime":"2022-10-17T12:53:12.922376139Z"}',
    );
    assert.equal(chat.disconnectedUserId(f), '42fb');
    assert.equal(chat.deletedMessageId(f), undefined);
  });

  test('an ERROR carries a numeric code', () => {
    assert.deepEqual(
      chat.parseFrame('{"Type":"ERROR","Id":"IG5mcmlvdGlv","RequestId":"r1","ErrorCode":400,"ErrorMessage":"too long"}'),
      { type: 'ERROR', id: 'IG5mcmlvdGlv', requestId: 'r1', errorCode: 400, errorMessage: 'too long' },
    );
  });

  test('keys are matched regardless of case, as the server matches them', () => {
    const f = chat.parseFrame('{"type":"EVENT","id":"a","eventName":"custom","attributes":{"k":"v"},"sendTime":"2023-01-01T00:00:00Z"}');
    assert.equal(f.type, 'EVENT');
    assert.equal(f.eventName, 'custom');
    assert.deepEqual(f.attributes, { k: 'v' });
  });

  const bad = [
    ['not JSON', '{', /not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['no Type', '{"Id":"a"}', /Type is missing/],
    ['an unknown Type', '{"Type":"PING","Id":"a"}', /unknown Type "PING"/],
    ['no Id', '{"Type":"ERROR","ErrorCode":400,"ErrorMessage":"x"}', /Id is missing/],
    ['a string ErrorCode', '{"Type":"ERROR","Id":"a","ErrorCode":"400","ErrorMessage":"x"}', /ErrorCode/],
    ['a fractional ErrorCode', '{"Type":"ERROR","Id":"a","ErrorCode":400.5,"ErrorMessage":"x"}', /ErrorCode/],
    ['a MESSAGE without Sender', '{"Type":"MESSAGE","Id":"a","Content":"x","SendTime":"t"}', /Sender/],
    ['a Sender without UserId', '{"Type":"MESSAGE","Id":"a","Content":"x","SendTime":"t","Sender":{}}', /UserId is missing/],
    ['a non-string attribute', '{"Type":"EVENT","Id":"a","EventName":"e","SendTime":"t","Attributes":{"n":1}}', /Attributes\.n is not a string/],
    ['a numeric Content', '{"Type":"MESSAGE","Id":"a","Content":5,"SendTime":"t","Sender":{"UserId":"u"}}', /Content is not a string/],
  ];
  for (const [name, raw, problem] of bad) {
    test(`${name} is an INVALID frame, not an exception`, () => {
      const f = chat.parseFrame(raw);
      assert.equal(f.type, 'INVALID');
      assert.equal(f.raw, raw);
      assert.match(f.problem, problem);
    });
  }
});

test('RequestIds are UUIDv4s and differ', () => {
  const a = chat.newRequestId();
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(a, chat.newRequestId());
});

test('the default chat URL is the console server, ws or wss as the page', () => {
  assert.equal(chat.defaultChatUrl({ protocol: 'http:', host: '127.0.0.1:8080' }), 'ws://127.0.0.1:8080/');
  assert.equal(chat.defaultChatUrl({ protocol: 'https:', host: 'chat.example.com' }), 'wss://chat.example.com/');
  assert.equal(chat.chatUrlProblem('wss://chat.example.com/ws'), null);
  assert.match(chat.chatUrlProblem('https://chat.example.com/'), /ws:\/\/ or wss:\/\//);
  assert.match(chat.chatUrlProblem('ws://x/#a'), /fragment/);
  assert.match(chat.chatUrlProblem('not a url'), /Not a URL/);
});

/** Enough of a browser WebSocket for ChatConnection. */
class FakeSocket {
  constructor(url, protocol) {
    this.url = url;
    this.protocol = protocol;
    this.sent = [];
    this.closedWith = null;
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close(code, reason) {
    this.closedWith = { code, reason };
    this.onclose({ code, reason, wasClean: true });
  }
}

describe('ChatConnection', () => {
  const open = () => {
    let sock;
    const seen = { opened: 0, frames: [], closes: [] };
    const conn = new chat.ChatConnection(
      'ws://127.0.0.1:1/',
      'TOKEN_abc',
      {
        onOpen: () => seen.opened++,
        onFrame: (f) => seen.frames.push(f),
        onClose: (c) => seen.closes.push(c),
      },
      (url, protocol) => (sock = new FakeSocket(url, protocol)),
    );
    return { conn, sock, seen };
  };

  test('offers the token as the only sub-protocol and refuses requests until open', () => {
    const { conn, sock, seen } = open();
    assert.equal(sock.url, 'ws://127.0.0.1:1/');
    assert.equal(sock.protocol, 'TOKEN_abc');
    assert.equal(conn.state, 'connecting');
    assert.throws(() => conn.sendMessage('early'), /not open/);
    sock.onopen();
    assert.equal(conn.state, 'open');
    assert.equal(seen.opened, 1);
  });

  test('writes the three requests with PascalCase keys and a RequestId each', () => {
    const { conn, sock } = open();
    sock.onopen();
    const r1 = conn.sendMessage('hello', { k: 'v' });
    const r2 = conn.deleteMessage('I4fme01f7HYM', 'spam');
    const r3 = conn.disconnectUser('bob');
    const r4 = conn.sendMessage('plain', {});
    assert.deepEqual(sock.sent, [
      { Action: 'SEND_MESSAGE', Content: 'hello', Attributes: { k: 'v' }, RequestId: r1 },
      { Action: 'DELETE_MESSAGE', Id: 'I4fme01f7HYM', Reason: 'spam', RequestId: r2 },
      { Action: 'DISCONNECT_USER', UserId: 'bob', RequestId: r3 },
      { Action: 'SEND_MESSAGE', Content: 'plain', RequestId: r4 },
    ]);
    assert.equal(new Set([r1, r2, r3, r4]).size, 4);
  });

  test('passes frames on parsed, binary ones as INVALID', () => {
    const { sock, seen } = open();
    sock.onopen();
    sock.onmessage({ data: '{"Type":"ERROR","Id":"a","RequestId":"","ErrorCode":429,"ErrorMessage":"slow down"}' });
    sock.onmessage({ data: new ArrayBuffer(2) });
    assert.equal(seen.frames[0].errorCode, 429);
    assert.equal(seen.frames[1].type, 'INVALID');
  });

  test('a server close is reported once, not as the client\'s', () => {
    const { conn, sock, seen } = open();
    sock.onopen();
    sock.onclose({ code: 1000, reason: 'disconnected by moderator', wasClean: true });
    sock.onclose({ code: 1000, reason: 'again', wasClean: true });
    assert.deepEqual(seen.closes, [{ code: 1000, reason: 'disconnected by moderator', wasClean: true, byClient: false }]);
    assert.equal(conn.state, 'closed');
    assert.equal(chat.describeClose(seen.closes[0]), '1000 disconnected by moderator');
    assert.throws(() => conn.sendMessage('late'), /not open/);
  });

  test('leave closes with 1000 and is reported as the client\'s', () => {
    const { conn, sock, seen } = open();
    sock.onopen();
    conn.leave();
    assert.deepEqual(sock.closedWith, { code: 1000, reason: 'left' });
    assert.equal(seen.closes[0].byClient, true);
    conn.leave();
    assert.equal(seen.closes.length, 1);
  });

  test('a refused handshake reads as lost or refused', () => {
    assert.equal(chat.describeClose({ code: 1006, reason: '', wasClean: false, byClient: false }), 'the connection was lost or refused (1006)');
  });
});
