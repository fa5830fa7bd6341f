// What a test cluster of ivschatd nodes shares, as the README's "Cluster
// mode" describes and like the Go cluster tests: a fresh PostgreSQL schema
// (chosen with search_path) and a Redis key prefix of its own, both removed
// again by drop(). Used by test/node and the console's tests. Needs
// IVSCHATD_TEST_POSTGRES_URL, IVSCHATD_TEST_REDIS_URL, psql and redis-cli;
// clusterUnavailable() says why a test must skip.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

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
 * Creates a schema and picks a Redis prefix, both named label plus a random
 * id. args are the flags that point a node at them; tokenKeys is a key ring
 * for the nodes' config file (tokens minted by one node open on another).
 * @param {string} label
 * @returns {{args: string[], tokenKeys: string[], drop: () => void}}
 */
export function clusterStore(label) {
  const id = randomBytes(6).toString('hex');
  const schema = `${label.replaceAll('-', '_')}_${id}`;
  const prefix = `${label}-${id}`;
  psql(`CREATE SCHEMA ${schema}`);
  const pgUrl = new URL(PG_URL);
  pgUrl.searchParams.set('search_path', schema);
  return {
    args: ['--postgres-url', pgUrl.toString(), '--redis-url', REDIS_URL, '--redis-prefix', prefix],
    tokenKeys: [`k1:${randomBytes(32).toString('base64')}`],
    drop() {
      try {
        psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        const keys = redis('--scan', '--pattern', `${prefix}:*`).split('\n').filter(Boolean);
        for (let i = 0; i < keys.length; i += 500) redis('UNLINK', ...keys.slice(i, i + 500));
      }
    },
  };
}
