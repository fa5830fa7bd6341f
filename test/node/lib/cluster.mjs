// Starts ivschatd nodes in cluster mode, as the README's "Cluster mode"
// describes: one PostgreSQL (a fresh schema per cluster, chosen with
// search_path), one Redis (a unique --redis-prefix per cluster) and a shared
// token key ring (tokenKeys in a config file): test/lib/clusterstore.mjs,
// whose clusterUnavailable() says why a test must skip.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { clusterStore } from '../../lib/clusterstore.mjs';
import { startServer } from './server.mjs';

export { clusterUnavailable } from '../../lib/clusterstore.mjs';

/**
 * Starts `n` nodes sharing a fresh schema, a Redis prefix and a key ring.
 * @param {number} n
 * @param {string[]} [args] more flags for every node
 * @returns {Promise<{nodes: Awaited<ReturnType<typeof startServer>>[], stop: () => Promise<void>}>}
 */
export async function startCluster(n = 2, args = []) {
  const store = clusterStore('ivschatd-node-test');
  const scratch = mkdtempSync(join(tmpdir(), 'ivschatd-cluster-'));
  const configFile = join(scratch, 'cluster.json');
  writeFileSync(configFile, JSON.stringify({ tokenKeys: store.tokenKeys }), { mode: 0o600 });
  const nodeArgs = ['--config', configFile, ...store.args, ...args];
  const nodes = [];
  const stop = async () => {
    await Promise.all(nodes.map((s) => s.stop()));
    rmSync(scratch, { recursive: true, force: true });
    store.drop();
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
