// Runs one ivschatd process for the black-box suites (test/node and the
// console's browser tests), with Node built-ins only so that both npm
// projects can import it: the binary (IVSCHATD_BIN, or built from this
// checkout), a loopback port chosen by the server (--listen 127.0.0.1:0,
// read from its "listen=" log line), a bounded wait for GET /healthz, and a
// stop that ends the process and removes its scratch dir. Processes still
// running when the test process exits are killed as a last resort.
import { execFileSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const START_TIMEOUT_MS = 20_000;
const BUILD_TIMEOUT_MS = 300_000;

const running = new Map();
process.on('exit', () => {
  for (const [child, scratch] of running) {
    child.kill('SIGKILL');
    rmSync(scratch, { recursive: true, force: true });
  }
});

/** IVSCHATD_BIN, or ivschatd built from this checkout into scratch. */
export function serverBinary(scratch) {
  if (process.env.IVSCHATD_BIN) return process.env.IVSCHATD_BIN;
  const bin = join(scratch, 'ivschatd');
  execFileSync('go', ['build', '-o', bin, './cmd/ivschatd'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: BUILD_TIMEOUT_MS,
  });
  return bin;
}

// Ours without any IVSCHATD_* setting (the caller's shell must not leak a
// config file, a Postgres URL or a key into the test server), plus extra.
function serverEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('IVSCHATD_')) env[k] = v;
  }
  return { ...env, ...extra };
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
 * Starts bin with args (after --listen 127.0.0.1:0) and waits until it is
 * healthy. scratch is removed by stop, or here if the start fails.
 * @param {{bin: string, args: string[], scratch: string, env?: Record<string,string>}} opts
 * @returns {Promise<{addr: string, endpoint: string, logs: () => string, stop: () => Promise<void>}>}
 */
export async function launch({ bin, args, scratch, env = {} }) {
  const child = spawn(bin, ['--listen', '127.0.0.1:0', ...args], {
    env: serverEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
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
    return { addr, endpoint, logs: () => stderr, stop };
  } catch (err) {
    await stop();
    err.message += `\n--- ivschatd stderr ---\n${stderr}`;
    throw err;
  }
}
