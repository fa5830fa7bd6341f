// Starts the ivschatd binary for one test file: a fresh data dir, a fixed test
// key pair, a loopback port chosen by the server and a bounded wait for
// GET /healthz (test/lib/ivschatd.mjs, shared with the console's tests). The
// process is killed when the tests end, and on process exit as a last resort.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { launch, serverBinary } from '../../lib/ivschatd.mjs';

export const REGION = 'us-west-2';
export const ACCOUNT_ID = '123456789012';
export const ACCESS_KEY_ID = 'AKIDNODETESTFULLACCESS';
export const SECRET_ACCESS_KEY = 'node-test-secret-0123456789abcdefghijklmn';

/**
 * @param {object} [opts]
 * @param {string[]} [opts.args] more command-line flags (e.g. --postgres-url for a cluster node)
 * @param {string} [opts.bin] an ivschatd binary already built (another node's `bin`)
 * @returns {Promise<{endpoint: string, wsUrl: string, region: string, accountId: string, bin: string,
 *   credentials: {accessKeyId: string, secretAccessKey: string}, logs: () => string, stop: () => Promise<void>}>}
 */
export async function startServer({ args = [], bin } = {}) {
  const scratch = mkdtempSync(join(tmpdir(), 'ivschatd-node-'));
  try {
    bin ??= serverBinary(scratch);
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
  const server = await launch({
    bin,
    scratch,
    args: ['--data-dir', join(scratch, 'data'), '--region', REGION, '--account-id', ACCOUNT_ID,
      '--log-format', 'text', ...args],
    env: { IVSCHATD_ACCESS_KEY_ID: ACCESS_KEY_ID, IVSCHATD_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY },
  });
  return {
    endpoint: server.endpoint,
    wsUrl: `ws://${server.addr}`,
    region: REGION,
    accountId: ACCOUNT_ID,
    bin,
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
    logs: server.logs,
    stop: server.stop,
  };
}
