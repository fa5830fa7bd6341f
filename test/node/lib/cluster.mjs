// Starts ivschatd nodes in cluster mode, as the README's "Cluster mode"
// describes: one PostgreSQL (a fresh schema per cluster, chosen with
// search_path), one Redis (a unique --redis-prefix per cluster) and a shared
// token key ring (tokenKeys in a config file): test/lib/clusterstore.mjs,
// whose clusterUnavailable() says why a test must skip.
import { startCluster as startNodes } from '../../lib/clusterstore.mjs';
import { startServer } from './server.mjs';

export { clusterUnavailable } from '../../lib/clusterstore.mjs';

/**
 * Starts `n` nodes sharing a fresh schema, a Redis prefix and a key ring.
 * @param {number} n
 * @param {string[]} [args] more flags for every node
 * @returns {Promise<{nodes: Awaited<ReturnType<typeof startServer>>[], stop: () => Promise<void>}>}
 */
export function startCluster(n = 2, args = []) {
  return startNodes('ivschatd-node-test', n, (store, bin) =>
    startServer({ args: ['--config', store.configFile, ...store.args, ...args], bin }));
}
