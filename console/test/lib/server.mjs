// Starts the ivschatd binary for one test file, the way an operator runs it:
// a config file (--config) with access keys — full access, a read-only
// key limited to Get*/List*, and one that may only mint chat tokens — and a
// fresh data dir; the process itself (binary, loopback port, /healthz wait,
// cleanup) is test/lib/ivschatd.mjs, shared with test/node. startCluster
// runs such servers as the nodes of one cluster.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startCluster as startNodes } from '../../../test/lib/clusterstore.mjs';
import { launch, serverBinary } from '../../../test/lib/ivschatd.mjs';

export const REGION = 'us-west-2';
export const ACCOUNT_ID = '123456789012';

/** Full access: no policy. */
export const FULL_KEY = {
  accessKeyId: 'AKIDCONSOLEFULLACCESS',
  secretAccessKey: 'console-test-full-secret-0123456789abcdefgh',
};

/** May read (ivschat:Get*, ivschat:List*, ivschatd:Get*, ivschatd:List*), nothing else. */
export const READ_ONLY_KEY = {
  accessKeyId: 'AKIDCONSOLEREADONLY',
  secretAccessKey: 'console-test-read-only-secret-0123456789ab',
};

/**
 * May only mint chat tokens: its sign-in check (ListRooms) is refused with
 * AccessDeniedException, which proves the key itself is good.
 */
export const TOKEN_ONLY_KEY = {
  accessKeyId: 'AKIDCONSOLETOKENONLY',
  secretAccessKey: 'console-test-token-only-secret-0123456789',
};

/**
 * @param {{extraArgs?: string[], config?: object, bin?: string}} [opts] more flags; more
 *   config file settings (next to accessKeys); an ivschatd binary already built (another server's bin)
 * @returns {Promise<{endpoint: string, consoleUrl: string, wsUrl: string, region: string, accountId: string,
 *   bin: string, logs: () => string, stop: () => Promise<void>}>}
 */
export async function startServer(opts = {}) {
  const scratch = mkdtempSync(join(tmpdir(), 'ivschatd-console-'));
  const configFile = join(scratch, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      accessKeys: [
        FULL_KEY,
        {
          ...READ_ONLY_KEY,
          policy: {
            statements: [
              { actions: ['ivschat:Get*', 'ivschat:List*', 'ivschatd:Get*', 'ivschatd:List*'], resources: ['*'] },
            ],
          },
        },
        { ...TOKEN_ONLY_KEY, policy: { statements: [{ actions: ['ivschat:CreateChatToken'], resources: ['*'] }] } },
      ],
      ...opts.config,
    }),
    { mode: 0o600 },
  );
  let bin;
  try {
    bin = opts.bin ?? serverBinary(scratch);
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
  const server = await launch({
    bin,
    scratch,
    args: ['--config', configFile, '--data-dir', join(scratch, 'data'), '--region', REGION,
      '--account-id', ACCOUNT_ID, '--log-format', 'text', ...(opts.extraArgs ?? [])],
  });
  return {
    endpoint: server.endpoint,
    consoleUrl: `${server.endpoint}/console/`,
    wsUrl: `ws://${server.addr}/`,
    region: REGION,
    accountId: ACCOUNT_ID,
    bin,
    logs: server.logs,
    stop: server.stop,
  };
}

export { clusterUnavailable } from '../../../test/lib/clusterstore.mjs';

/**
 * Starts n servers as the nodes of one cluster, as the README's "Cluster
 * mode" says and like the Go cluster tests: a fresh PostgreSQL schema
 * (chosen with search_path), a Redis key prefix of their own and a shared
 * token key ring (tokenKeys), each node with its own data dir and port.
 * stop() ends the nodes, drops the schema and deletes the prefix's keys.
 * Needs what clusterUnavailable() checks.
 * @returns {Promise<{nodes: Awaited<ReturnType<typeof startServer>>[], stop: () => Promise<void>}>}
 */
export function startCluster(n = 2) {
  return startNodes('console-cluster', n, (store, bin) =>
    startServer({ config: { tokenKeys: store.tokenKeys }, extraArgs: store.args, bin }));
}
