// Starts the ivschatd binary for one test file, the way an operator runs it:
// a config file (--config) with access keys — full access, a read-only
// key limited to Get*/List*, and one that may only mint chat tokens — a fresh data dir, a loopback port
// chosen by the server, and a bounded wait for GET /healthz. The binary is
// IVSCHATD_BIN, or built from this checkout. The process is killed when the
// tests end, and on process exit as a last resort.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const START_TIMEOUT_MS = 20_000;
const BUILD_TIMEOUT_MS = 300_000;

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

// Ours without any IVSCHATD_* setting: the caller's shell must not leak a
// config file, a Postgres URL or a key into the test server.
function serverEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('IVSCHATD_')) env[k] = v;
  }
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
 * @param {{extraArgs?: string[]}} [opts]
 * @returns {Promise<{endpoint: string, consoleUrl: string, region: string, accountId: string,
 *   logs: () => string, stop: () => Promise<void>}>}
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
    }),
    { mode: 0o600 },
  );
  let bin;
  try {
    bin = serverBinary(scratch);
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
  const child = spawn(
    bin,
    ['--config', configFile, '--listen', '127.0.0.1:0', '--data-dir', join(scratch, 'data'), '--region', REGION,
      '--account-id', ACCOUNT_ID, '--log-format', 'text', ...(opts.extraArgs ?? [])],
    { env: serverEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  running.set(child, scratch);
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
      const timer = setTimeout(() => reject(new Error('no "listen=" ready line from ivschatd in time')), START_TIMEOUT_MS);
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
    return { endpoint, consoleUrl: `${endpoint}/console/`, region: REGION, accountId: ACCOUNT_ID, logs: () => stderr, stop };
  } catch (err) {
    await stop();
    err.message += `\n--- ivschatd stderr ---\n${stderr}`;
    throw err;
  }
}
