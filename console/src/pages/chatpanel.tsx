// The room page's live chat panel: mint a chat token (CreateChatToken), join
// the room over WebSocket from this browser (chat.ts), watch the frames as
// they arrive, send messages, and moderate: delete a message, disconnect a
// user (over the chat connection when the token allows it, else through the
// API), send an event (SendEvent).
import { useEffect, useRef, useState } from 'preact/hooks';
import { callApi, type Capability, type Room } from '../api';
import {
  ChatConnection,
  chatUrlProblem,
  defaultChatUrl,
  deletedMessageId,
  describeClose,
  disconnectedUserId,
  type CloseInfo,
  type Frame,
  type InvalidFrame,
} from '../chat';
import { ErrorBanner, Field, fieldError, fieldProps, OkBanner, useCall } from '../ui';
import { AttributeRows, newRow, rowsToMap, type AttributeRow } from './attributes';

const CAPABILITIES: { value: Capability; hint: string }[] = [
  { value: 'SEND_MESSAGE', hint: 'send messages' },
  { value: 'DELETE_MESSAGE', hint: 'delete any message' },
  { value: 'DISCONNECT_USER', hint: 'disconnect any user' },
];

/** The log keeps this many entries; older ones scroll away for good. */
const LOG_LIMIT = 500;

type Entry =
  | { key: number; kind: 'message'; frame: Extract<Frame, { type: 'MESSAGE' }>; deleted?: { reason: string } }
  | { key: number; kind: 'event'; frame: Extract<Frame, { type: 'EVENT' }> }
  | { key: number; kind: 'error'; frame: Extract<Frame, { type: 'ERROR' }> }
  | { key: number; kind: 'invalid'; frame: InvalidFrame }
  | { key: number; kind: 'status'; text: string; time: string };

type NewEntry = Entry extends infer E ? (E extends unknown ? Omit<E, 'key'> : never) : never;

type Status =
  | { state: 'idle' }
  | { state: 'minting' }
  | { state: 'connecting'; userId: string }
  | { state: 'open'; userId: string; caps: Capability[] }
  /** opened: false when the handshake itself failed (refused or unreachable). */
  | { state: 'closed'; userId: string; close: CloseInfo; opened: boolean };

function clock(iso?: string): string {
  const d = iso ? new Date(iso) : new Date();
  return Number.isNaN(d.getTime()) ? iso ?? '' : d.toLocaleTimeString();
}

function attrsText(attrs: Record<string, string>): string {
  return Object.entries(attrs)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

let entryKey = 1;

export function ChatPanel({ room }: { room: Room }) {
  const [userId, setUserId] = useState('console-user');
  const [caps, setCaps] = useState<Capability[]>(['SEND_MESSAGE']);
  const [tokenAttrs, setTokenAttrs] = useState<AttributeRow[]>([]);
  const [duration, setDuration] = useState('60');
  const [url, setUrl] = useState(() => defaultChatUrl(location));
  const [joinError, setJoinError] = useState<unknown>(null);
  const [status, setStatus] = useState<Status>({ state: 'idle' });
  const [entries, setEntries] = useState<Entry[]>([]);
  const [draft, setDraft] = useState('');
  const [panelError, setPanelError] = useState<unknown>(null);
  const conn = useRef<ChatConnection | null>(null);
  const logRef = useRef<HTMLOListElement>(null);
  const stickToBottom = useRef(true);

  // Leaving the page leaves the room.
  useEffect(() => () => conn.current?.leave(), []);

  // Follow new entries unless the reader scrolled up to read older ones.
  useEffect(() => {
    const el = logRef.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [entries]);

  const append = (e: NewEntry) =>
    setEntries((old) => {
      const next = [...old, { ...e, key: entryKey++ } as Entry];
      return next.length > LOG_LIMIT ? next.slice(next.length - LOG_LIMIT) : next;
    });

  const onFrame = (f: Frame | InvalidFrame) => {
    switch (f.type) {
      case 'MESSAGE':
        append({ kind: 'message', frame: f });
        return;
      case 'EVENT': {
        const gone = deletedMessageId(f);
        if (gone) {
          const reason = f.attributes.Reason ?? '';
          // Its Delete button goes: keep a keyboard user's focus in the log.
          const active = document.activeElement;
          if (active instanceof HTMLElement && active.closest('li')?.getAttribute('data-message-id') === gone) logRef.current?.focus();
          setEntries((old) => old.map((e) => (e.kind === 'message' && e.frame.id === gone ? { ...e, deleted: { reason } } : e)));
        }
        append({ kind: 'event', frame: f });
        return;
      }
      case 'ERROR':
        append({ kind: 'error', frame: f });
        return;
      case 'INVALID':
        append({ kind: 'invalid', frame: f });
    }
  };

  const urlProblem = chatUrlProblem(url);
  const join = async (e: Event) => {
    e.preventDefault();
    if (urlProblem) return;
    setJoinError(null);
    setPanelError(null);
    const minutes = Number(duration);
    const attrs = rowsToMap(tokenAttrs);
    setStatus({ state: 'minting' });
    let token: string;
    try {
      const out = await callApi('CreateChatToken', {
        roomIdentifier: room.arn,
        userId,
        capabilities: caps,
        ...(duration.trim() !== '' ? { sessionDurationInMinutes: minutes } : {}),
        ...(attrs ? { attributes: attrs } : {}),
      });
      token = out.token;
    } catch (err) {
      setJoinError(err);
      setStatus({ state: 'idle' });
      return;
    }
    const who = userId;
    const granted = [...caps];
    setStatus({ state: 'connecting', userId: who });
    let opened = false;
    try {
      conn.current = new ChatConnection(url, token, {
        onOpen: () => {
          opened = true;
          setStatus({ state: 'open', userId: who, caps: granted });
          append({ kind: 'status', text: `Joined as ${who}.`, time: new Date().toISOString() });
        },
        onFrame,
        onClose: (info) => {
          conn.current = null;
          const closed: Status = { state: 'closed', userId: who, close: info, opened };
          setStatus(closed);
          append({
            kind: 'status',
            text: opened ? statusText(closed) : `${statusText(closed)} ${REFUSED_HINT}`,
            time: new Date().toISOString(),
          });
        },
      });
    } catch (err) {
      // A URL the browser refuses (a port it blocks, say).
      setJoinError(err);
      setStatus({ state: 'idle' });
    }
  };

  const open = status.state === 'open';
  const can = (c: Capability) => open && status.caps.includes(c);

  const send = (e: Event) => {
    e.preventDefault();
    if (!conn.current || draft === '') return;
    try {
      conn.current.sendMessage(draft);
      setDraft('');
    } catch (err) {
      setPanelError(err);
    }
  };

  const deleteMessage = async (id: string) => {
    setPanelError(null);
    try {
      if (can('DELETE_MESSAGE') && conn.current) conn.current.deleteMessage(id);
      else await callApi('DeleteMessage', { roomIdentifier: room.arn, id });
    } catch (err) {
      setPanelError(err);
    }
  };

  const leave = () => conn.current?.leave();

  return (
    <section class="chat" aria-labelledby="chat-title">
      <h2 id="chat-title">Live chat</h2>
      <div class="chat-grid">
        <div class="chat-main card">
          <p class={`chat-status chat-status-${status.state}`} role="status" id="chat-status">
            {statusText(status)}
          </p>
          <ErrorBanner error={panelError} onDismiss={() => setPanelError(null)} />
          <ol
            class="chat-log"
            ref={logRef}
            aria-label="Chat frames"
            aria-live="polite"
            aria-relevant="additions"
            tabIndex={0}
            onScroll={(e) => {
              const el = e.currentTarget;
              stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
            }}
          >
            {entries.length === 0 && <li class="chat-empty muted">Frames from the room appear here once you join.</li>}
            {entries.map((e) => (
              <LogEntry key={e.key} entry={e} onDelete={deleteMessage} canDeleteOverSocket={can('DELETE_MESSAGE')} />
            ))}
          </ol>
          <form class="chat-compose" onSubmit={send}>
            <label for="chat-message" class="visually-hidden">
              Message
            </label>
            <input
              id="chat-message"
              value={draft}
              placeholder={open ? 'Write a message' : 'Join to send messages'}
              disabled={!open}
              autocomplete="off"
              onInput={(e) => setDraft(e.currentTarget.value)}
            />
            <button type="submit" class="button-primary" disabled={!open || draft === ''}>
              Send
            </button>
          </form>
        </div>
        <div class="chat-side">
          {open || status.state === 'connecting' ? (
            <div class="card">
              <h3>Connection</h3>
              <p>
                Connected as <strong>{status.userId}</strong>
                {open && status.caps.length > 0 && <> with {status.caps.join(', ')}</>}.
              </p>
              <button type="button" onClick={leave}>
                Leave
              </button>
            </div>
          ) : (
            <form class="card" onSubmit={join} aria-labelledby="join-title">
              <h3 id="join-title">Join the room</h3>
              <p class="field-hint">Mints a chat token with CreateChatToken and opens a WebSocket with it from this browser.</p>
              <ErrorBanner error={joinError} />
              <Field id="chat-user" field="userId" label="User ID" error={joinError}>
                <input
                  id="chat-user"
                  value={userId}
                  required
                  spellcheck={false}
                  onInput={(e) => setUserId(e.currentTarget.value)}
                  {...fieldProps('chat-user', joinError, 'userId')}
                />
              </Field>
              <fieldset class="caps">
                <legend>Capabilities</legend>
                {CAPABILITIES.map((c) => (
                  <label class="check" key={c.value}>
                    <input
                      type="checkbox"
                      checked={caps.includes(c.value)}
                      onChange={(e) =>
                        setCaps((old) => (e.currentTarget.checked ? [...old, c.value] : old.filter((x) => x !== c.value)))
                      }
                    />
                    <span class="mono">{c.value}</span> <span class="muted">({c.hint})</span>
                  </label>
                ))}
              </fieldset>
              <AttributeRows
                idPrefix="chat-attr"
                legend="Token attributes"
                noun="Token attribute"
                rows={tokenAttrs}
                onChange={setTokenAttrs}
                error={fieldError(joinError, 'attributes')}
              />
              <Field
                id="chat-duration"
                field="sessionDurationInMinutes"
                label="Session duration (minutes)"
                error={joinError}
                hint="1 to 180; empty for the default (60)."
              >
                <input
                  id="chat-duration"
                  type="number"
                  min={1}
                  max={180}
                  value={duration}
                  onInput={(e) => setDuration(e.currentTarget.value)}
                  {...fieldProps('chat-duration', joinError, 'sessionDurationInMinutes', true)}
                />
              </Field>
              <div class={urlProblem ? 'field field-invalid' : 'field'}>
                <label for="chat-url">WebSocket URL</label>
                <input
                  id="chat-url"
                  value={url}
                  spellcheck={false}
                  onInput={(e) => setUrl(e.currentTarget.value)}
                  aria-invalid={urlProblem ? 'true' : undefined}
                  aria-describedby={urlProblem ? 'chat-url-hint chat-url-error' : 'chat-url-hint'}
                />
                <p class="field-hint" id="chat-url-hint">
                  This server's main listener serves chat too; change it when chat has its own address (--messaging-listen).
                </p>
                {urlProblem && (
                  <p class="field-error" id="chat-url-error">
                    {urlProblem}
                  </p>
                )}
              </div>
              <button type="submit" class="button-primary" disabled={status.state === 'minting' || urlProblem !== null}>
                {status.state === 'minting' ? 'Joining…' : 'Join'}
              </button>
            </form>
          )}
          <DisconnectForm room={room} socket={can('DISCONNECT_USER') ? conn.current : null} />
          <SendEventForm room={room} />
        </div>
      </div>
    </section>
  );
}

/** Why a handshake may fail; the browser hides the HTTP status (403, 404, ...). */
const REFUSED_HINT =
  'Browsers do not tell why a handshake failed: the user may be banned from the room, the token expired, or the server unreachable at this URL.';

function statusText(s: Status): string {
  switch (s.state) {
    case 'idle':
      return 'Not connected.';
    case 'minting':
      return 'Minting a chat token…';
    case 'connecting':
      return `Connecting as ${s.userId}…`;
    case 'open':
      return `Connected as ${s.userId}.`;
    case 'closed':
      if (s.close.byClient) return 'You left the room.';
      if (!s.opened) return `Could not join as ${s.userId}: ${describeClose(s.close)}.`;
      return `Disconnected by the server: ${describeClose(s.close)}.`;
  }
}

function LogEntry({
  entry,
  onDelete,
  canDeleteOverSocket,
}: {
  entry: Entry;
  onDelete: (id: string) => void;
  canDeleteOverSocket: boolean;
}) {
  switch (entry.kind) {
    case 'message': {
      const f = entry.frame;
      return (
        <li class={entry.deleted ? 'chat-entry chat-message chat-deleted' : 'chat-entry chat-message'} data-message-id={f.id}>
          <div class="chat-meta">
            <span class="chat-sender">{f.sender.userId}</span>
            <time dateTime={f.sendTime}>{clock(f.sendTime)}</time>
            <span class="mono muted">{f.id}</span>
          </div>
          {entry.deleted ? (
            <p class="chat-content">
              <em>Message deleted{entry.deleted.reason ? ` (${entry.deleted.reason})` : ''}.</em>
            </p>
          ) : (
            <>
              <p class="chat-content">{f.content}</p>
              {Object.keys(f.attributes).length > 0 && <p class="chat-attrs mono">{attrsText(f.attributes)}</p>}
              <button
                type="button"
                class="button-plain chat-delete"
                onClick={() => onDelete(f.id)}
                title={canDeleteOverSocket ? 'DELETE_MESSAGE over the chat connection' : 'The DeleteMessage API'}
              >
                Delete<span class="visually-hidden"> message {f.id} from {f.sender.userId}</span>
              </button>
            </>
          )}
        </li>
      );
    }
    case 'event': {
      const f = entry.frame;
      const gone = deletedMessageId(f);
      const user = disconnectedUserId(f);
      const reason = f.attributes.Reason ? `: ${f.attributes.Reason}` : '';
      return (
        <li class="chat-entry chat-event">
          <div class="chat-meta">
            <span class="chat-kind">EVENT</span>
            <span class="mono">{f.eventName}</span>
            <time dateTime={f.sendTime}>{clock(f.sendTime)}</time>
          </div>
          {gone ? (
            <p>
              Message <span class="mono">{gone}</span> was deleted{reason}.
            </p>
          ) : user ? (
            <p>
              User <strong>{user}</strong> was disconnected{reason}.
            </p>
          ) : (
            Object.keys(f.attributes).length > 0 && <p class="chat-attrs mono">{attrsText(f.attributes)}</p>
          )}
        </li>
      );
    }
    case 'error':
      return (
        <li class="chat-entry chat-error">
          <div class="chat-meta">
            <span class="chat-kind">ERROR {entry.frame.errorCode}</span>
          </div>
          <p>{entry.frame.errorMessage}</p>
        </li>
      );
    case 'invalid':
      return (
        <li class="chat-entry chat-error">
          <div class="chat-meta">
            <span class="chat-kind">Unreadable frame</span> <span>{entry.frame.problem}</span>
          </div>
          <p class="mono">{entry.frame.raw.slice(0, 300)}</p>
        </li>
      );
    case 'status':
      return (
        <li class="chat-entry chat-note">
          <time dateTime={entry.time}>{clock(entry.time)}</time> {entry.text}
        </li>
      );
  }
}

function DisconnectForm({ room, socket }: { room: Room; socket: ChatConnection | null }) {
  const [target, setTarget] = useState('');
  const [reason, setReason] = useState('');
  const [done, setDone] = useState('');
  const { error, busy, submit } = useCall();
  const disconnect = async () => {
    setDone('');
    if (socket) {
      socket.disconnectUser(target, reason || undefined);
      setDone(`DISCONNECT_USER for ${target} sent over the chat connection.`);
    } else {
      await callApi('DisconnectUser', { roomIdentifier: room.arn, userId: target, ...(reason ? { reason } : {}) });
      setDone(`${target} was disconnected (DisconnectUser).`);
    }
  };
  return (
    <form class="card" onSubmit={submit(disconnect)} aria-labelledby="disconnect-title">
      <h3 id="disconnect-title">Disconnect a user</h3>
      <p class="field-hint">
        {socket
          ? 'Sent as DISCONNECT_USER over your chat connection (your token has the capability).'
          : 'Sent through the DisconnectUser API.'}
      </p>
      <ErrorBanner error={error} />
      <Field id="disconnect-user" field="userId" label="User to disconnect" error={error}>
        <input
          id="disconnect-user"
          value={target}
          required
          spellcheck={false}
          onInput={(e) => setTarget(e.currentTarget.value)}
          {...fieldProps('disconnect-user', error, 'userId')}
        />
      </Field>
      <Field id="disconnect-reason" field="reason" label="Reason (optional)" error={error}>
        <input id="disconnect-reason" value={reason} onInput={(e) => setReason(e.currentTarget.value)} {...fieldProps('disconnect-reason', error, 'reason')} />
      </Field>
      <OkBanner text={done} />
      <button type="submit" disabled={busy || target === ''}>
        Disconnect user
      </button>
    </form>
  );
}

function SendEventForm({ room }: { room: Room }) {
  const [name, setName] = useState('');
  const [attrs, setAttrs] = useState<AttributeRow[]>(() => [newRow()]);
  const [done, setDone] = useState('');
  const { error, busy, submit } = useCall();
  const send = async () => {
    setDone('');
    const a = rowsToMap(attrs);
    const out = await callApi('SendEvent', { roomIdentifier: room.arn, eventName: name, ...(a ? { attributes: a } : {}) });
    setDone(`Event ${out.id} sent.`);
  };
  return (
    <form class="card" onSubmit={submit(send)} aria-labelledby="event-title">
      <h3 id="event-title">Send an event</h3>
      <p class="field-hint">Through the SendEvent API, to everyone in the room.</p>
      <ErrorBanner error={error} />
      <Field id="event-name" field="eventName" label="Event name" error={error}>
        <input
          id="event-name"
          value={name}
          required
          spellcheck={false}
          onInput={(e) => setName(e.currentTarget.value)}
          {...fieldProps('event-name', error, 'eventName')}
        />
      </Field>
      <AttributeRows
        idPrefix="event-attr"
        legend="Event attributes"
        noun="Event attribute"
        rows={attrs}
        onChange={setAttrs}
        error={fieldError(error, 'attributes')}
      />
      <OkBanner text={done} />
      <button type="submit" disabled={busy || name === ''}>
        Send event
      </button>
    </form>
  );
}
