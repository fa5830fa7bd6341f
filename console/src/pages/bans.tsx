// The room page's bans, through ivschatd's extension operations: the list
// of bans in force (ListBans, page by page), Unban (UnbanUser), a form to
// ban any user ID, and the dialog the Connections table opens to ban the
// user of a row (BanUser). The server validates; its fieldList errors sit
// next to the fields they name.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, callExtension, type Ban, type Room } from '../api';
import { ErrorBanner, Field, fieldProps, Loading, Table, useCall } from '../ui';
import { bannerError, DialogActions, intValue, Modal, Pager, Time } from './forms';

/** Bans per page of the list (ListBans allows 1 to 50). */
export const BANS_PAGE = 20;

/** What a stored ban means, for the status line: "bob is banned until unbanned." */
export function banSummary(ban: Ban): string {
  if (!ban.expiresAt) return `${ban.userId} is banned until unbanned.`;
  const d = new Date(ban.expiresAt);
  const until = Number.isNaN(d.getTime()) ? ban.expiresAt : d.toLocaleString();
  return `${ban.userId} is banned until ${until}.`;
}

/** A change made elsewhere on the page (the Connections table's Ban): n counts them. */
export interface BanChange {
  n: number;
  text: string;
}

interface BanInputs {
  duration: string;
  reason: string;
}

/** BanUser's input from the form's text: empty fields are left out. */
function banInput(room: Room, userId: string, v: BanInputs) {
  const minutes = intValue(v.duration);
  return {
    roomIdentifier: room.arn,
    userId,
    ...(minutes !== undefined ? { durationInMinutes: minutes } : {}),
    ...(v.reason !== '' ? { reason: v.reason } : {}),
  };
}

/**
 * Duration and reason, shared by the form and the dialog. The duration is a
 * text box, not type=number: a browser reads a number box it cannot parse
 * ("1h") as empty, which here would mean a ban until unbanned; as text it
 * reaches the API, which names the field.
 */
function BanFields(props: { idPrefix: string; value: BanInputs; onChange: (v: BanInputs) => void; error: unknown }) {
  const { idPrefix, value, onChange, error } = props;
  const durationId = `${idPrefix}-duration`;
  const reasonId = `${idPrefix}-reason`;
  return (
    <>
      <Field
        id={durationId}
        field="durationInMinutes"
        label="Duration in minutes (optional)"
        error={error}
        hint="1 to 525600 (a year); empty bans until unbanned."
      >
        <input
          id={durationId}
          inputMode="numeric"
          autocomplete="off"
          value={value.duration}
          onInput={(e) => onChange({ ...value, duration: e.currentTarget.value })}
          {...fieldProps(durationId, error, 'durationInMinutes', true)}
        />
      </Field>
      <Field id={reasonId} field="reason" label="Reason (optional)" error={error} hint="Up to 256 characters; sent with the disconnection.">
        <input
          id={reasonId}
          value={value.reason}
          onInput={(e) => onChange({ ...value, reason: e.currentTarget.value })}
          {...fieldProps(reasonId, error, 'reason', true)}
        />
      </Field>
    </>
  );
}

/**
 * Asks before banning userId (from a Connections row), with an optional
 * duration and reason; shows the API's refusal in place.
 */
export function BanDialog(props: { room: Room; userId: string; onClose: () => void; onBanned: (ban: Ban) => void }) {
  const [value, setValue] = useState<BanInputs>({ duration: '', reason: '' });
  const { error, busy, submit } = useCall();
  const ban = async () => props.onBanned(await callExtension('BanUser', banInput(props.room, props.userId, value)));
  return (
    <Modal id="ban-dialog" title={`Ban ${props.userId}?`} onClose={props.onClose}>
      <form onSubmit={submit(ban)} noValidate class="modal-form">
        <div class="modal-body">
          <p>
            {'Every connection of '}
            <strong class="mono">{props.userId}</strong>
            {' in this room is closed, and new ones are refused until the ban ends or is lifted.'}
          </p>
        </div>
        <BanFields idPrefix="ban-dialog" value={value} onChange={setValue} error={error} />
        <ErrorBanner error={bannerError(error, ['durationInMinutes', 'reason'])} />
        <DialogActions kind="danger" busy={busy} label="Ban user" busyLabel="Banning…" onCancel={props.onClose} />
      </form>
    </Modal>
  );
}

/** The Bans section: the list with Unban, and the "Ban a user" form. */
export function BansSection(props: { room: Room; change: BanChange }) {
  const { room, change } = props;
  // tokens[i] is the nextToken that fetches page i (undefined: the first).
  const [tokens, setTokens] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState(0);
  const [bans, setBans] = useState<Ban[] | null>(null);
  const [listError, setListError] = useState<unknown>(null);
  const [rowError, setRowError] = useState<unknown>(null);
  const [reloads, setReloads] = useState(0);
  const [status, setStatus] = useState('');
  const statusRef = useRef<HTMLParagraphElement>(null);

  useEffect(() => {
    let cancelled = false;
    callExtension('ListBans', { roomIdentifier: room.arn, maxResults: BANS_PAGE, nextToken: tokens[page] }).then(
      (out) => {
        if (cancelled) return;
        // An unban can empty the last page: show the one before it.
        if (out.bans.length === 0 && page > 0) {
          setTokens((t) => t.slice(0, page));
          setPage(page - 1);
          return;
        }
        setBans(out.bans);
        setListError(null);
        setTokens((t) => [...t.slice(0, page + 1), out.nextToken]);
      },
      (err) => {
        if (cancelled) return;
        setBans(null);
        setListError(err);
      },
    );
    return () => {
      cancelled = true;
    };
    // Not on tokens, which this writes: tokens[page] is read when the page
    // changes or the list is reloaded.
  }, [room.arn, page, reloads, change.n]);

  // What a ban or unban did is said in the status line, and focus moves
  // there: the control the keyboard was on goes (the Connections row of a
  // user now disconnected, the Unban of a row now gone) or is disabled
  // while the call runs (Ban user).
  const focusStatus = useRef(false);
  const announce = (text: string) => {
    focusStatus.current = true;
    setStatus(text);
  };
  useEffect(() => {
    if (change.n > 0) announce(change.text);
  }, [change.n]);
  useEffect(() => {
    // After the render that shows the status line (it may not be there yet).
    if (!focusStatus.current || !statusRef.current) return;
    focusStatus.current = false;
    statusRef.current.focus();
  });

  const unban = async (userId: string) => {
    setRowError(null);
    setStatus('');
    try {
      await callExtension('UnbanUser', { roomIdentifier: room.arn, userId });
      announce(`${userId} is no longer banned.`);
      setReloads((n) => n + 1);
    } catch (err) {
      setRowError(err);
    }
  };

  const refused = listError instanceof ApiError && listError.code === 'AccessDeniedException';
  return (
    <section class="bans" aria-labelledby="bans-title">
      <div class="bans-head">
        <h2 id="bans-title">Bans</h2>
        <button type="button" onClick={() => setReloads((n) => n + 1)}>
          Refresh<span class="visually-hidden"> bans</span>
        </button>
      </div>
      <p class="field-hint bans-intro">
        A banned user is disconnected from this room and refused when joining again (HTTP 403, on every node) until the ban
        ends or is lifted. Disconnect only kicks: the user can come back with a new token.
      </p>
      <div class="bans-grid">
        <div class="bans-list">
          {status && (
            <p class="banner banner-ok" role="status" tabIndex={-1} ref={statusRef}>
              {status}
            </p>
          )}
          <ErrorBanner error={rowError} onDismiss={() => setRowError(null)} />
          <ErrorBanner error={listError} />
          {refused && <p class="muted">This key may not list bans (ivschatd:ListBans).</p>}
          {bans === null ? (
            !listError && <Loading label="Loading bans…" />
          ) : (
            <Table
              caption="Bans in force"
              captionHidden
              rows={bans}
              rowKey={(b) => b.userId}
              empty="Nobody is banned from this room."
              columns={[
                { header: 'User ID', render: (b) => <span class="mono">{b.userId}</span> },
                { header: 'Reason', render: (b) => b.reason ?? <span class="muted">—</span> },
                { header: 'Banned at', render: (b) => <Time iso={b.createdAt} /> },
                { header: 'Expires', render: (b) => (b.expiresAt ? <Time iso={b.expiresAt} /> : 'until unbanned') },
                {
                  header: 'Actions',
                  render: (b) => (
                    <button type="button" onClick={() => unban(b.userId)} aria-label={`Unban ${b.userId}`}>
                      Unban
                    </button>
                  ),
                },
              ]}
            />
          )}
          {(page > 0 || tokens[page + 1] !== undefined) && (
            <Pager
              label="Pages of bans"
              page={page + 1}
              hasPrevious={page > 0}
              hasNext={tokens[page + 1] !== undefined}
              onPrevious={() => setPage((p) => p - 1)}
              onNext={() => setPage((p) => p + 1)}
            />
          )}
        </div>
        <BanForm
          room={room}
          onBanned={(ban) => {
            announce(banSummary(ban));
            setReloads((n) => n + 1);
          }}
        />
      </div>
    </section>
  );
}

function BanForm(props: { room: Room; onBanned: (ban: Ban) => void }) {
  const [userId, setUserId] = useState('');
  const [value, setValue] = useState<BanInputs>({ duration: '', reason: '' });
  const { error, busy, submit } = useCall();
  const banUser = async () => {
    const ban = await callExtension('BanUser', banInput(props.room, userId, value));
    setUserId('');
    setValue({ duration: '', reason: '' });
    props.onBanned(ban);
  };
  return (
    <form class="card" onSubmit={submit(banUser)} noValidate aria-labelledby="ban-form-title">
      <h3 id="ban-form-title">Ban a user</h3>
      <ErrorBanner error={bannerError(error, ['userId', 'durationInMinutes', 'reason'])} />
      <Field id="ban-user" field="userId" label="User to ban" error={error}>
        <input
          id="ban-user"
          value={userId}
          spellcheck={false}
          autocomplete="off"
          onInput={(e) => setUserId(e.currentTarget.value)}
          {...fieldProps('ban-user', error, 'userId')}
        />
      </Field>
      <BanFields idPrefix="ban-form" value={value} onChange={setValue} error={error} />
      <button type="submit" class="button-danger" disabled={busy || userId === ''}>
        {busy ? 'Banning…' : 'Ban user'}
      </button>
    </form>
  );
}
