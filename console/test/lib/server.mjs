// Starts the ivschatd binary for one test file, the way an operator runs it:
// a config file (--config) with access keys — full access, a read-only
// key limited to Get*/List*, and one that may only mint chat tokens — and a
// fresh data dir; the process itself (binary, loopback port, /healthz wait,
// cleanup) is test/lib/ivschatd.mjs, shared with test/node. startCluster
// runs such servers as the nodes of one cluster.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

const PG_URL = process.env.IVSCHATD_TEST_POSTGRES_URL;
const REDIS_URL = process.env.IVSCHATD_TEST_REDIS_URL;

/** Why startCluster cannot run here (a skip message), or '' when it can. */
export function clusterUnavailable() {
  if (!PG_URL || !REDIS_URL) {
    return 'IVSCHATD_TEST_POSTGRES_URL and IVSCHATD_TEST_REDIS_URL must both be set; skipping the cluster test';
  }
  for (const tool of ['psql', 'redis-cli']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      return `${tool} is needed to set up and clean the cluster's PostgreSQL schema and Redis keys; skipping the cluster test`;
    }
  }
  return '';
}

function psql(sql) {
  execFileSync('psql', [PG_URL, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PGOPTIONS: '-c client_min_messages=warning' }, // no NOTICE for DROP ... CASCADE
  });
}

function redis(...args) {
  return execFileSync('redis-cli', ['-u', REDIS_URL, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/**
 * Starts n servers as the nodes of one cluster, as the README's "Cluster
 * mode" says and like the Go cluster tests: a fresh PostgreSQL schema
 * (chosen with search_path), a Redis key prefix of their own and a shared
 * token key ring (tokenKeys), each node with its own data dir and port.
 * stop() ends the nodes, drops the schema and deletes the prefix's keys.
 * Needs what clusterUnavailable() checks.
 * @returns {Promise<{nodes: Awaited<ReturnType<typeof startServer>>[], stop: () => Promise<void>}>}
 */
export async function startCluster(n = 2) {
  const id = randomBytes(6).toString('hex');
  const schema = `console_cluster_${id}`;
  const prefix = `console-cluster-${id}`;
  psql(`CREATE SCHEMA ${schema}`);
  const pgUrl = new URL(PG_URL);
  pgUrl.searchParams.set('search_path', schema);
  const config = { tokenKeys: [`k1:${randomBytes(32).toString('base64')}`] };
  const extraArgs = ['--postgres-url', pgUrl.toString(), '--redis-url', REDIS_URL, '--redis-prefix', prefix];
  const nodes = [];
  const stop = async () => {
    await Promise.all(nodes.map((s) => s.stop()));
    try {
      psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    } finally {
      const keys = redis('--scan', '--pattern', `${prefix}:*`).split('\n').filter(Boolean);
      for (let i = 0; i < keys.length; i += 500) redis('UNLINK', ...keys.slice(i, i + 500));
    }
  };
  try {
    // One after the other: the first creates the schema's tables.
    for (let i = 0; i < n; i++) nodes.push(await startServer({ config, extraArgs, bin: nodes[0]?.bin }));
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, stop };
}
