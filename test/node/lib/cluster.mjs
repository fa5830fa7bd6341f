// Starts ivschatd nodes in cluster mode, as the README's "Cluster mode"
// describes: one PostgreSQL (a fresh schema per cluster, chosen with
// search_path), one Redis (a unique --redis-prefix per cluster) and a shared
// token key ring (tokenKeys in a config file). Like the Go cluster tests,
// it needs IVSCHATD_TEST_POSTGRES_URL and IVSCHATD_TEST_REDIS_URL, and psql
// to create the schema; clusterUnavailable() says why a test must skip.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startServer } from './server.mjs';

const PG_URL = process.env.IVSCHATD_TEST_POSTGRES_URL;
const REDIS_URL = process.env.IVSCHATD_TEST_REDIS_URL;

function hasPsql() {
  try {
    execFileSync('psql', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why a cluster cannot be started here (a skip message), or '' when it can. */
export function clusterUnavailable() {
  if (!PG_URL || !REDIS_URL) {
    return 'IVSCHATD_TEST_POSTGRES_URL and IVSCHATD_TEST_REDIS_URL must both be set; skipping the cluster test';
  }
  if (!hasPsql()) return 'psql is needed to create the cluster\'s PostgreSQL schema; skipping the cluster test';
  return '';
}

function psql(sql) {
  execFileSync('psql', [PG_URL, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PGOPTIONS: '-c client_min_messages=warning' }, // no NOTICE for DROP ... CASCADE
  });
}

/**
 * Starts `n` nodes sharing a fresh schema, a Redis prefix and a key ring.
 * @param {number} n
 * @param {string[]} [args] more flags for every node
 * @returns {Promise<{nodes: Awaited<ReturnType<typeof startServer>>[], stop: () => Promise<void>}>}
 */
export async function startCluster(n = 2, args = []) {
  const id = randomBytes(6).toString('hex');
  const schema = `ivschatd_node_${id}`;
  psql(`CREATE SCHEMA ${schema}`);
  const url = new URL(PG_URL);
  url.searchParams.set('search_path', schema);
  const scratch = mkdtempSync(join(tmpdir(), 'ivschatd-cluster-'));
  const configFile = join(scratch, 'cluster.json');
  writeFileSync(configFile, JSON.stringify({ tokenKeys: [`k1:${randomBytes(32).toString('base64')}`] }), { mode: 0o600 });
  const nodeArgs = ['--config', configFile, '--postgres-url', url.toString(), '--redis-url', REDIS_URL,
    '--redis-prefix', `ivschatd-node-test-${id}`, ...args];
  const nodes = [];
  const stop = async () => {
    await Promise.all(nodes.map((s) => s.stop()));
    rmSync(scratch, { recursive: true, force: true });
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  };
  try {
    // One after the other: the first creates the schema's tables.
    for (let i = 0; i < n; i++) {
      nodes.push(await startServer({ args: nodeArgs, bin: nodes[0]?.bin }));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, stop };
}
