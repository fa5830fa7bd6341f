// The console's first load stays small: every file of it, fetched from the
// real server as a browser would (Accept-Encoding: gzip), totals at most
// 200 KB on the wire. The figure is printed for the record.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { startServer } from './lib/server.mjs';

const LIMIT = 200 * 1024;

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

/** GET url without decoding: resolves to the raw body and the response. */
function fetchRaw(url) {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { 'accept-encoding': 'gzip, deflate, br' } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ res, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('first load is at most 200 KB gzipped', async (t) => {
  const index = await fetchRaw(server.consoleUrl);
  assert.equal(index.res.statusCode, 200);
  const html = index.res.headers['content-encoding'] === 'gzip'
    ? (await import('node:zlib')).gunzipSync(index.body).toString('utf8')
    : index.body.toString('utf8');
  // Everything index.html loads from the server (data: URLs cost nothing more).
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]).filter((u) => !u.startsWith('data:'));
  assert.ok(refs.some((r) => r.startsWith('app.js')) && refs.some((r) => r.startsWith('app.css')), `index.html loads ${refs}`);

  const rows = [['index.html', index]];
  for (const ref of refs) rows.push([ref, await fetchRaw(new URL(ref, server.consoleUrl))]);
  let total = 0;
  for (const [name, { res, body }] of rows) {
    assert.equal(res.statusCode, 200, name);
    if (body.length > 1024) assert.equal(res.headers['content-encoding'], 'gzip', `${name} is not gzipped`);
    // Body plus headers: what crosses the wire (bar TCP/TLS framing).
    const headerBytes = res.rawHeaders.reduce((n, h) => n + Buffer.byteLength(h) + 2, 0);
    total += body.length + headerBytes;
    t.diagnostic(`${name}: ${body.length} bytes body (${res.headers['content-encoding'] ?? 'identity'}), ${headerBytes} bytes headers`);
  }
  const line = `console first load: ${total} bytes (${(total / 1024).toFixed(1)} KB) gzipped over ${rows.length} requests; limit ${LIMIT / 1024} KB`;
  t.diagnostic(line);
  console.log(line);
  assert.ok(total <= LIMIT, line);
});
