// Starts the ivschatd binary for one test file: a fresh data dir, a fixed test
// key pair, a loopback port chosen by the server (--listen 127.0.0.1:0), and a
// bounded wait for GET /healthz. The process is killed when the tests end,
// and on process exit as a last resort.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REGION = 'us-west-2';
export const ACCOUNT_ID = '123456789012';
export const ACCESS_KEY_ID = 'AKIDNODETESTFULLACCESS';
export const SECRET_ACCESS_KEY = 'node-test-secret-0123456789abcdefghijklmn';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const START_TIMEOUT_MS = 20_000;
const BUILD_TIMEOUT_MS = 300_000;

// Servers still running when this process exits (a test file that never
// reached its `after` hook): kill them and drop their scratch dirs.
const running = new Map();
process.on('exit', () => {
  for (const [child, scratch] of running) {
    child.kill('SIGKILL');
    rmSync(scratch, { recursive: true, force: true });
  }
});

function serverBinary(scratch) {
  if (process.env.IVSCHATD_BIN) return process.env.IVSCHATD_BIN;
  const bin = join(scratch, 'ivschatd');
  execFileSync('go', ['build', '-o', bin, './cmd/ivschatd'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: BUILD_TIMEOUT_MS,
  });
  return bin;
}

// The child's environment: ours without any IVSCHATD_* setting (a config
// file, a Postgres URL, ... from the caller's shell must not leak in).
function serverEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('IVSCHATD_')) env[k] = v;
  }
  env.IVSCHATD_ACCESS_KEY_ID = ACCESS_KEY_ID;
  env.IVSCHATD_SECRET_ACCESS_KEY = SECRET_ACCESS_KEY;
  return env;
}

async function waitHealthy(base, child, deadline) {
  let last = 'no attempt';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`ivschatd exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = err.message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`ivschatd /healthz not ready in time (${last})`);
}

/**
 * @param {object} [opts]
 * @param {string[]} [opts.args] more command-line flags (e.g. --postgres-url for a cluster node)
 * @param {string} [opts.bin] an ivschatd binary already built (another node's `bin`)
 * @returns {Promise<{endpoint: string, wsUrl: string, region: string, accountId: string, bin: string,
 *   credentials: {accessKeyId: string, secretAccessKey: string}, logs: () => string, stop: () => Promise<void>}>}
 */
export async function startServer({ args = [], bin } = {}) {
  const scratch = mkdtempSync(join(tmpdir(), 'ivschatd-node-'));
  const dataDir = join(scratch, 'data');
  try {
    bin ??= serverBinary(scratch);
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
  const child = spawn(
    bin,
    ['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--region', REGION, '--account-id', ACCOUNT_ID,
      '--log-format', 'text', ...args],
    { env: serverEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  running.set(child, scratch);
  // The server must not keep the test process alive by itself.
  child.unref();
  child.stderr.unref();
  let stderr = '';
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
    rmSync(scratch, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    const addr = await new Promise((resolveAddr, reject) => {
      const timer = setTimeout(() => reject(new Error('no "listen=" ready line from ivschatd in time')),
        START_TIMEOUT_MS);
      child.on('error', (err) => { clearTimeout(timer); reject(err); });
      child.on('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`ivschatd exited early (code ${code}, signal ${sig})`));
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
        const m = /listen=(127\.0\.0\.1:\d+)/.exec(stderr);
        if (m) { clearTimeout(timer); resolveAddr(m[1]); }
      });
    });
    const endpoint = `http://${addr}`;
    await waitHealthy(endpoint, child, deadline);
    return {
      endpoint,
      wsUrl: `ws://${addr}`,
      region: REGION,
      accountId: ACCOUNT_ID,
      bin,
      credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
      logs: () => stderr,
      stop,
    };
  } catch (err) {
    await stop();
    err.message += `\n--- ivschatd stderr ---\n${stderr}`;
    throw err;
  }
}
