// The console's SigV4 signer (src/sigv4.ts) against AWS's own signer
// (@smithy/signature-v4, what the AWS SDK for JavaScript v3 uses), and
// against the real server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { FULL_KEY, startServer } from './lib/server.mjs';
import { importSource } from './lib/signer.mjs';

const { sign, canonicalQuery } = await importSource('sigv4.ts');

const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', region: 'eu-central-1' };
const now = new Date('2026-11-29T13:04:05.678Z');
const roomArn = 'arn:aws:ivschat:us-west-2:123456789012:room/AbCdEfGh1234';

async function smithyAuthorization({ method, url, headers, body }) {
  const u = new URL(url);
  const query = {};
  for (const [k, v] of u.searchParams) {
    if (k in query) query[k] = [].concat(query[k], v);
    else query[k] = v;
  }
  const signer = new SignatureV4({
    service: 'ivschat',
    region: creds.region,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
    sha256: Sha256,
    applyChecksum: false,
    uriEscapePath: true,
  });
  const req = new HttpRequest({
    method,
    protocol: u.protocol,
    hostname: u.hostname,
    port: u.port ? Number(u.port) : undefined,
    path: u.pathname,
    query,
    headers: { ...headers, host: u.host },
    body,
  });
  const signed = await signer.sign(req, { signingDate: now });
  return signed.headers.authorization;
}

const cases = [
  {
    name: 'POST with a JSON body',
    method: 'POST',
    url: 'http://127.0.0.1:8080/CreateRoom',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'lobby', maximumMessageLength: 500, tags: { team: 'ops', 'ünïcode': 'ß → ✓' } }),
  },
  { name: 'empty body', method: 'POST', url: 'http://localhost:9/ListRooms', headers: {}, body: '' },
  {
    name: 'tags path with an encoded ARN',
    method: 'GET',
    url: `http://127.0.0.1:8080/tags/${encodeURIComponent(roomArn)}`,
    headers: {},
    body: '',
  },
  {
    name: 'query with repeated keys, spaces and reserved characters',
    method: 'DELETE',
    url: `https://chat.example.com/tags/${encodeURIComponent(roomArn)}?tagKeys=z%20key&tagKeys=a%2Fb&tagKeys=%2A%21&tagKeys=a%2Fb`,
    headers: {},
    body: '',
  },
  {
    name: 'extension operation',
    method: 'POST',
    url: 'http://[::1]:8443/ivschatd/GetRoomStats',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ identifier: roomArn }),
  },
];

describe('signer matches @smithy/signature-v4', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const mine = sign({ method: c.method, url: new URL(c.url), headers: c.headers, body: c.body }, creds, now);
      assert.equal(mine['x-amz-date'], '20261129T130405Z');
      assert.equal(mine.authorization, await smithyAuthorization(c));
    });
  }
});

test('canonical query sorts by key then value and encodes the AWS way', () => {
  assert.equal(canonicalQuery('?b=2&a=2&a=1&c=x+y&d=%7E&e'), 'a=1&a=2&b=2&c=x%20y&d=~&e=');
});

describe('requests signed by the console are accepted by the server', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { await server?.stop(); });

  const call = async (key, method, path, body = '') => {
    const url = new URL(path, server.endpoint);
    const headers = sign({ method, url, headers: body ? { 'content-type': 'application/json' } : {}, body },
      { ...key, region: 'us-east-1' });
    const res = await fetch(url, { method, headers, body: body || undefined });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('x-amzn-errortype'), json: text ? JSON.parse(text) : {} };
  };

  test('create, tag, list tags and untag a room', async () => {
    const created = await call(FULL_KEY, 'POST', '/CreateRoom', JSON.stringify({ name: 'signed-by-console', tags: { 'a b': '1', 'c/d': '2' } }));
    assert.equal(created.status, 200, JSON.stringify(created));
    const tagsPath = `/tags/${encodeURIComponent(created.json.arn)}`;
    assert.equal((await call(FULL_KEY, 'POST', tagsPath, JSON.stringify({ tags: { e: '3' } }))).status, 200);
    const untag = await call(FULL_KEY, 'DELETE', `${tagsPath}?tagKeys=${encodeURIComponent('a b')}&tagKeys=${encodeURIComponent('c/d')}`);
    assert.equal(untag.status, 200, JSON.stringify(untag));
    const listed = await call(FULL_KEY, 'GET', tagsPath);
    assert.equal(listed.status, 200, JSON.stringify(listed));
    assert.deepEqual(listed.json.tags, { e: '3' });
  });

  test('a wrong secret is refused with InvalidSignatureException', async () => {
    const res = await call({ ...FULL_KEY, secretAccessKey: 'not-the-secret' }, 'POST', '/ListRooms', '{}');
    assert.equal(res.status, 403);
    assert.equal(res.type, 'InvalidSignatureException');
  });
});
