// The signed-in key lives in sessionStorage only: it is gone when the tab
// closes, is not shared with other tabs, and is never sent to the server
// (only signatures made with it are).
import type { Credentials } from './sigv4';

const KEY = 'ivschatd.console.credentials';

type Listener = (creds: Credentials | null) => void;
const listeners = new Set<Listener>();

export function getCredentials(): Credentials | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const c = JSON.parse(raw) as Partial<Credentials>;
    if (typeof c.accessKeyId !== 'string' || typeof c.secretAccessKey !== 'string' || typeof c.region !== 'string') return null;
    return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, region: c.region };
  } catch {
    return null;
  }
}

export function signIn(creds: Credentials): void {
  sessionStorage.setItem(KEY, JSON.stringify(creds));
  notify(creds);
}

/** Forgets the key: everything the console kept in sessionStorage goes. */
export function signOut(): void {
  sessionStorage.clear();
  notify(null);
}

/** Calls fn on every sign-in and sign-out; returns the unsubscribe function. */
export function onSessionChange(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function notify(creds: Credentials | null): void {
  for (const fn of listeners) fn(creds);
}
