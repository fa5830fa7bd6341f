// A small API client for tests that set up or check state behind the
// console's back: POST /<Operation> (and the tags routes), or
// POST /ivschatd/<Operation> for ivschatd's extension operations, signed with
// the console's own signer (src/sigv4.ts), through Node's fetch.
import { importSource } from './signer.mjs';

const { sign } = await importSource('sigv4.ts');

const EXTENSIONS = new Set(['GetRoomStats', 'ListRoomConnections', 'GetServerStatus', 'BanUser', 'UnbanUser', 'ListBans']);

/**
 * Returns call(operation, input) → the JSON answer, throwing an Error with
 * .status, .code and .body on a refusal.
 */
export function apiClient(endpoint, key) {
  return async function call(operation, input = {}) {
    let method = 'POST';
    let path = EXTENSIONS.has(operation) ? `/ivschatd/${operation}` : `/${operation}`;
    let body = JSON.stringify(input);
    if (['ListTagsForResource', 'TagResource', 'UntagResource'].includes(operation)) {
      path = `/tags/${encodeURIComponent(input.resourceArn)}`;
      if (operation === 'ListTagsForResource') { method = 'GET'; body = ''; }
      if (operation === 'TagResource') body = JSON.stringify({ tags: input.tags });
      if (operation === 'UntagResource') {
        method = 'DELETE';
        body = '';
        path += `?${input.tagKeys.map((k) => `tagKeys=${encodeURIComponent(k)}`).join('&')}`;
      }
    }
    const url = new URL(path, endpoint);
    const headers = sign({ method, url, headers: body ? { 'content-type': 'application/json' } : {}, body },
      { ...key, region: 'us-west-2' });
    const res = await fetch(url, { method, headers, body: body || undefined });
    const text = await res.text();
    const json = text ? JSON.parse(text) : {};
    if (!res.ok) {
      const err = new Error(`${operation}: ${res.status} ${res.headers.get('x-amzn-errortype')}: ${json.message}`);
      Object.assign(err, { status: res.status, code: res.headers.get('x-amzn-errortype'), body: json });
      throw err;
    }
    return json;
  };
}
