// The console's shell: sign-in, the header with navigation, and a router on
// the URL's fragment (#/rooms, #/rooms/<id>, #/logging, #/server), so the
// server needs to know no page path. Pages live in pages/*.tsx.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, callApi } from './api';
import { LoggingPage } from './pages/logging';
import { RoomPage } from './pages/room';
import { RoomsPage } from './pages/rooms';
import { ServerPage } from './pages/server';
import { getCredentials, onSessionChange, signIn, signOut } from './session';
import { DEFAULT_REGION, type Credentials } from './sigv4';
import { errorText, PageTitle } from './ui';

export type Route =
  | { page: 'rooms' }
  | { page: 'room'; id: string }
  | { page: 'logging' }
  | { page: 'server' }
  | { page: 'notfound'; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/rooms';
  if (path === '/rooms' || path === '/') return { page: 'rooms' };
  const room = /^\/rooms\/([^/]+)$/.exec(path);
  if (room) {
    try {
      return { page: 'room', id: decodeURIComponent(room[1]) };
    } catch {
      return { page: 'notfound', path };
    }
  }
  if (path === '/logging') return { page: 'logging' };
  if (path === '/server') return { page: 'server' };
  return { page: 'notfound', path };
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

/**
 * Why a key did not sign in, in words, or null when the verification call
 * proved the key good. AccessDeniedException proves it too: the signature
 * was accepted and only the key's policy refused ListRooms.
 */
export function signInProblem(err: unknown): string | null {
  if (!(err instanceof ApiError)) return errorText(err);
  switch (err.code) {
    case 'AccessDeniedException':
      return null;
    case 'UnrecognizedClientException':
      return 'This access key ID is not known to the server.';
    case 'InvalidSignatureException':
      if (/Signature (expired|not yet current)/.test(err.message)) {
        return "The request time is more than 15 minutes away from the server's clock: check this computer's clock.";
      }
      return 'The secret access key is wrong for this access key ID.';
    case 'IncompleteSignatureException':
    case 'MissingAuthenticationTokenException':
      return `The server did not accept the signature (${err.message}).`;
    default:
      return errorText(err);
  }
}

function SignIn() {
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const keyRef = useRef<HTMLInputElement>(null);
  useEffect(() => {
    document.title = 'Sign in · ivschatd console';
    keyRef.current?.focus();
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const creds: Credentials = {
      accessKeyId: String(form.get('accessKeyId') ?? '').trim(),
      secretAccessKey: String(form.get('secretAccessKey') ?? ''),
      region: String(form.get('region') ?? '').trim() || DEFAULT_REGION,
    };
    if (!creds.accessKeyId || !creds.secretAccessKey) {
      setProblem('Enter both the access key ID and the secret access key.');
      return;
    }
    setBusy(true);
    setProblem(null);
    let why: string | null;
    try {
      await callApi('ListRooms', { maxResults: 1 }, creds);
      why = null;
    } catch (err) {
      why = signInProblem(err);
    }
    setBusy(false);
    if (why === null) signIn(creds);
    else setProblem(why);
  };

  return (
    <main class="signin" id="main">
      <h1>ivschatd console</h1>
      <form class="card" onSubmit={submit} aria-describedby={problem ? 'signin-error' : undefined}>
        <h2>Sign in</h2>
        <p class="muted">Use an access key of this server. It is kept in this browser tab only, until you sign out or close it.</p>
        <div class="field">
          <label for="accessKeyId">Access key ID</label>
          <input ref={keyRef} id="accessKeyId" name="accessKeyId" autocomplete="username" spellcheck={false} required />
        </div>
        <div class="field">
          <label for="secretAccessKey">Secret access key</label>
          <input id="secretAccessKey" name="secretAccessKey" type="password" autocomplete="current-password" required />
        </div>
        <details>
          <summary>Options</summary>
          <div class="field">
            <label for="region">Region</label>
            <input id="region" name="region" placeholder={DEFAULT_REGION} spellcheck={false} aria-describedby="region-hint" />
            <p class="field-hint" id="region-hint">
              The region named in request signatures; the server accepts any.
            </p>
          </div>
        </details>
        {problem && (
          <p class="banner banner-error" role="alert" id="signin-error">
            {problem}
          </p>
        )}
        <button type="submit" class="button-primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

const nav: { href: string; label: string; pages: Route['page'][] }[] = [
  { href: '#/rooms', label: 'Rooms', pages: ['rooms', 'room'] },
  { href: '#/logging', label: 'Logging configurations', pages: ['logging'] },
  { href: '#/server', label: 'Server', pages: ['server'] },
];

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'rooms':
      return <RoomsPage />;
    case 'room':
      return <RoomPage id={route.id} />;
    case 'logging':
      return <LoggingPage />;
    case 'server':
      return <ServerPage />;
    case 'notfound':
      return (
        <section>
          <PageTitle>Page not found</PageTitle>
          <p>
            There is no page at <code>{route.path}</code>. <a href="#/rooms">Go to the rooms.</a>
          </p>
        </section>
      );
  }
}

function Shell({ creds }: { creds: Credentials }) {
  const route = useRoute();
  const mainRef = useRef<HTMLElement>(null);
  const first = useRef(true);
  useEffect(() => {
    // Moving focus to the new page tells keyboard and screen-reader users
    // that the page changed (not on the first render: focus stays put).
    if (first.current) {
      first.current = false;
      return;
    }
    mainRef.current?.focus();
  }, [route]);
  return (
    <>
      <a class="skip-link" href="#main" onClick={(e) => (e.preventDefault(), mainRef.current?.focus())}>
        Skip to content
      </a>
      <header class="topbar">
        <span class="brand">ivschatd</span>
        <nav aria-label="Main">
          <ul>
            {nav.map((n) => (
              <li>
                <a href={n.href} aria-current={n.pages.includes(route.page) ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="account">
          <span class="muted" title="Signed-in access key ID">
            {creds.accessKeyId}
          </span>
          <button type="button" class="button-plain" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" ref={mainRef} tabIndex={-1}>
        <Page route={route} />
      </main>
    </>
  );
}

function App() {
  const [creds, setCreds] = useState(getCredentials);
  useEffect(() => onSessionChange(setCreds), []);
  return creds ? <Shell creds={creds} /> : <SignIn />;
}

const root = document.getElementById('app');
if (root) render(<App />, root);
