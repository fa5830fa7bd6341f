// Small helpers shared by the test files.
import { Ivschat } from '@aws-sdk/client-ivschat';

export const DEFAULT_WAIT_MS = 5000;

/** Resolves like `promise`, or rejects after `ms` with a message naming `what`. */
export function withTimeout(promise, what, ms = DEFAULT_WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `fn`, which must throw; returns the error (fails when nothing is thrown). */
export async function expectError(fn) {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** A v3 control-plane client pointed at the test server. */
export function controlPlane(srv, overrides = {}) {
  return new Ivschat({
    endpoint: srv.endpoint,
    region: srv.region,
    credentials: srv.credentials,
    ...overrides,
  });
}

/** A name that no other test in the run uses (room and logging names allow [a-zA-Z0-9-_]). */
export function uniqueName(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

export const ID_RE = /^[a-zA-Z0-9]{12}$/;
