// Test clusters of ivschatd nodes, as the README's "Cluster mode" describes
// and like the Go cluster tests: the nodes share a fresh PostgreSQL schema
// (chosen with search_path), a Redis key prefix of their own and a token key
// ring, all removed again when the cluster stops. Used by test/node and the
// console's tests, each with its own way of starting one server. Needs
// IVSCHATD_TEST_POSTGRES_URL, IVSCHATD_TEST_REDIS_URL, psql and redis-cli;
// clusterUnavailable() says why a test must skip.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PG_URL = process.env.IVSCHATD_TEST_POSTGRES_URL;
const REDIS_URL = process.env.IVSCHATD_TEST_REDIS_URL;

/** Why a cluster cannot be started here (a skip message), or '' when it can. */
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
 * Starts n nodes, one after the other (the first creates the schema's
 * tables), with startNode(store, bin), which starts one server with the
 * flags store.args and the key ring store.tokenKeys (in its config file, or
 * store.configFile, which holds nothing else) and returns it with its stop()
 * and bin (passed on, so the binary is built once). stop() ends the nodes
 * and removes the schema, the Redis keys and the config file.
 * @template {{stop: () => Promise<void>, bin: string}} S
 * @param {string} label names the schema and the prefix
 * @param {number} n
 * @param {(store: {args: string[], tokenKeys: string[], configFile: string}, bin?: string) => Promise<S>} startNode
 * @returns {Promise<{nodes: S[], stop: () => Promise<void>}>}
 */
export async function startCluster(label, n, startNode) {
  const store = clusterStore(label);
  const nodes = [];
  const stop = async () => {
    await Promise.all(nodes.map((s) => s.stop()));
    store.drop();
  };
  try {
    for (let i = 0; i < n; i++) nodes.push(await startNode(store, nodes[0]?.bin));
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, stop };
}

function clusterStore(label) {
  const id = randomBytes(6).toString('hex');
  const schema = `${label.replaceAll('-', '_')}_${id}`;
  const prefix = `${label}-${id}`;
  psql(`CREATE SCHEMA ${schema}`);
  const pgUrl = new URL(PG_URL);
  pgUrl.searchParams.set('search_path', schema);
  const tokenKeys = [`k1:${randomBytes(32).toString('base64')}`];
  const scratch = mkdtempSync(join(tmpdir(), 'ivschatd-cluster-'));
  const configFile = join(scratch, 'cluster.json');
  writeFileSync(configFile, JSON.stringify({ tokenKeys }), { mode: 0o600 });
  return {
    args: ['--postgres-url', pgUrl.toString(), '--redis-url', REDIS_URL, '--redis-prefix', prefix],
    tokenKeys,
    configFile,
    drop() {
      rmSync(scratch, { recursive: true, force: true });
      try {
        psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        const keys = redis('--scan', '--pattern', `${prefix}:*`).split('\n').filter(Boolean);
        for (let i = 0; i < keys.length; i += 500) redis('UNLINK', ...keys.slice(i, i + 500));
      }
    },
  };
}
