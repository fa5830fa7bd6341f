// AWS Signature Version 4 for the console's API calls.
//
// Hashing is done with @noble/hashes rather than crypto.subtle: browsers
// expose crypto.subtle only in secure contexts (https:// or localhost), and
// operators often reach a server on a private address over plain http://.
// It is synchronous too, which keeps signing a plain function.
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

export const SERVICE = 'ivschat';
export const DEFAULT_REGION = 'us-east-1';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Region of the credential scope; ivschatd accepts any. */
  region: string;
}

export interface SignableRequest {
  method: string;
  /** Absolute URL; its path must already be percent-encoded as sent. */
  url: URL;
  /** Header names in any case; signed as given, besides host and x-amz-date. */
  headers: Record<string, string>;
  body: string;
}

/** RFC 3986 encoding as AWS wants it: everything but A-Z a-z 0-9 - _ . ~ escaped. */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/**
 * The canonical URI: the path as sent, encoded once more segment by segment
 * (every service but S3 signs the double-encoded path).
 */
export function canonicalPath(path: string): string {
  if (path === '') return '/';
  return path.split('/').map(uriEncode).join('/');
}

/** The canonical query: parameters decoded, re-encoded, sorted by key then value. */
export function canonicalQuery(search: string): string {
  const q = search.startsWith('?') ? search.slice(1) : search;
  if (q === '') return '';
  const pairs: [string, string][] = [];
  for (const piece of q.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const k = eq < 0 ? piece : piece.slice(0, eq);
    const v = eq < 0 ? '' : piece.slice(eq + 1);
    pairs.push([uriEncode(decodeQueryPart(k)), uriEncode(decodeQueryPart(v))]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function decodeQueryPart(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, '%20'));
  } catch {
    return s;
  }
}

/** 20060102T150405Z */
export function amzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function hex(data: string): string {
  return bytesToHex(sha256(utf8ToBytes(data)));
}

function mac(key: Uint8Array, data: string): Uint8Array {
  return hmac(sha256, key, utf8ToBytes(data));
}

/**
 * Signs req and returns the headers to send with it: the given ones plus
 * x-amz-date and authorization. The host header is signed but not returned
 * (browsers set it themselves, from the URL).
 */
export function sign(req: SignableRequest, creds: Credentials, now: Date = new Date()): Record<string, string> {
  const date = amzDate(now);
  const day = date.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v.trim().replace(/\s+/g, ' ');
  headers['x-amz-date'] = date;
  const signing: Record<string, string> = { ...headers, host: req.url.host };
  const names = Object.keys(signing).sort();
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalPath(req.url.pathname),
    canonicalQuery(req.url.search),
    names.map((n) => `${n}:${signing[n]}\n`).join(''),
    signedHeaders,
    hex(req.body),
  ].join('\n');
  const scope = `${day}/${creds.region}/${SERVICE}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', date, scope, hex(canonicalRequest)].join('\n');
  let key = mac(utf8ToBytes('AWS4' + creds.secretAccessKey), day);
  key = mac(key, creds.region);
  key = mac(key, SERVICE);
  key = mac(key, 'aws4_request');
  const signature = bytesToHex(mac(key, stringToSign));
  headers['authorization'] =
    `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}
