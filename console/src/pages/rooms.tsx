// The Rooms page: ListRooms with its three filters and nextToken paging, the
// limits of each listed room (RoomSummary lacks them: one GetRoom per row,
// a few at a time), and create, edit and delete with every field of the
// model. The API validates; its fieldList is shown next to the controls.
import { useCallback, useEffect, useState } from 'preact/hooks';
import {
  ApiError,
  callApi,
  type FallbackResult,
  type LoggingConfiguration,
  type Room,
  type RoomFields,
  type RoomSummary,
} from '../api';
import { ErrorBanner, Field, fieldProps, Loading, OkBanner, PageTitle, Table, useCall, type Column } from '../ui';
import {
  applyTagChanges,
  bannerError,
  ConfirmDelete,
  DialogActions,
  fieldErrorsUnder,
  GroupErrors,
  intValue,
  Modal,
  Pager,
  RowActions,
  TagList,
  TagsEditor,
  tagRows,
  tagsOf,
  Time,
  type TagRow,
} from './forms';

interface Filters {
  name?: string;
  messageReviewHandlerUri?: string;
  loggingConfigurationIdentifier?: string;
}

const PAGE_SIZES = [10, 25, 50];
/** GetRoom calls in flight at once while filling in the limits. */
const DETAIL_CONCURRENCY = 4;

/** Every logging configuration (the quota keeps them few), for the filter and the picker. */
export async function listAllLoggingConfigurations(): Promise<LoggingConfiguration[]> {
  const all: LoggingConfiguration[] = [];
  let nextToken: string | undefined;
  do {
    const out = await callApi('ListLoggingConfigurations', { maxResults: 50, nextToken });
    all.push(...out.loggingConfigurations);
    nextToken = out.nextToken;
  } while (nextToken);
  return all;
}

/**
 * Fetches each room in full (for its limits), DETAIL_CONCURRENCY at a time.
 * The answers belong to one rooms array: a new list starts with none, so a
 * reload never shows the limits it had before.
 */
function useRoomDetails(rooms: RoomSummary[] | null): Record<string, Room | ApiError> {
  const [state, setState] = useState<{ of: RoomSummary[] | null; map: Record<string, Room | ApiError> }>({ of: null, map: {} });
  useEffect(() => {
    if (!rooms) return;
    let cancelled = false;
    const queue = rooms.map((r) => r.arn);
    const worker = async () => {
      for (let arn = queue.shift(); arn && !cancelled; arn = queue.shift()) {
        let result: Room | ApiError;
        try {
          result = await callApi('GetRoom', { identifier: arn });
        } catch (err) {
          result = err instanceof ApiError ? err : new ApiError(0, 'Error', String(err));
        }
        if (!cancelled) setState((s) => ({ of: rooms, map: { ...(s.of === rooms ? s.map : {}), [arn]: result } }));
      }
    };
    for (let i = 0; i < DETAIL_CONCURRENCY; i++) void worker();
    return () => {
      cancelled = true;
    };
  }, [rooms]);
  return state.of === rooms ? state.map : {};
}

function Limit({ detail, pick }: { detail?: Room | ApiError; pick: (r: Room) => number }) {
  if (!detail) return <span class="muted">…</span>;
  if (detail instanceof ApiError) {
    return (
      <span class="muted" title={`${detail.code}: ${detail.message}`}>
        ?
      </span>
    );
  }
  return <>{pick(detail)}</>;
}

function configLabel(arn: string, configs: LoggingConfiguration[]): string {
  const c = configs.find((x) => x.arn === arn);
  const id = arn.slice(arn.lastIndexOf('/') + 1);
  return c?.name ? `${c.name} (${id})` : id;
}

export function RoomsPage() {
  const [filters, setFilters] = useState<Filters>({});
  const [pageSize, setPageSize] = useState(25);
  // tokens[i] is the nextToken that fetches page i (undefined: the first).
  const [tokens, setTokens] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState(0);
  const [rooms, setRooms] = useState<RoomSummary[] | null>(null);
  // Which request the shown list answers: while it differs from the
  // current one, the table is marked aria-busy.
  const [shownFor, setShownFor] = useState('');
  const [listError, setListError] = useState<unknown>(null);
  const [configs, setConfigs] = useState<LoggingConfiguration[]>([]);
  const [configsError, setConfigsError] = useState<unknown>(null);
  const [reloads, setReloads] = useState(0);
  const [status, setStatus] = useState('');
  const [editing, setEditing] = useState<{ mode: 'create' } | { mode: 'edit'; room: Room } | null>(null);
  const [deleting, setDeleting] = useState<RoomSummary | null>(null);
  const [rowError, setRowError] = useState<unknown>(null);
  const details = useRoomDetails(rooms);

  const reload = useCallback(() => setReloads((n) => n + 1), []);

  useEffect(() => {
    listAllLoggingConfigurations().then(setConfigs, setConfigsError);
  }, [reloads]);

  const request = JSON.stringify([filters, pageSize, page, reloads]);
  useEffect(() => {
    let cancelled = false;
    callApi('ListRooms', { ...filters, maxResults: pageSize, nextToken: tokens[page] }).then(
      (out) => {
        if (cancelled) return;
        setRooms(out.rooms);
        setListError(null);
        setShownFor(request);
        setTokens((t) => [...t.slice(0, page + 1), out.nextToken]);
      },
      (err) => {
        if (cancelled) return;
        setRooms([]);
        setListError(err);
        setShownFor(request);
      },
    );
    return () => {
      cancelled = true;
    };
    // Not on tokens, which this writes: tokens[page] is read when page,
    // filters or size change, and restart() resets both together.
  }, [filters, pageSize, page, reloads]);

  const restart = () => {
    setTokens([undefined]);
    setPage(0);
  };

  const applyFilters = (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const f: Filters = {};
    const name = String(form.get('name') ?? '').trim();
    const uri = String(form.get('messageReviewHandlerUri') ?? '').trim();
    const lc = String(form.get('loggingConfigurationIdentifier') ?? '');
    if (name) f.name = name;
    if (uri) f.messageReviewHandlerUri = uri;
    if (lc) f.loggingConfigurationIdentifier = lc;
    setFilters(f);
    restart();
  };

  const clearFilters = (e: Event) => {
    (e.currentTarget as HTMLButtonElement).form?.reset();
    setFilters({});
    restart();
  };

  const openEdit = async (r: RoomSummary) => {
    setRowError(null);
    try {
      setEditing({ mode: 'edit', room: await callApi('GetRoom', { identifier: r.arn }) });
    } catch (err) {
      setRowError(err);
    }
  };

  const filtered = Object.keys(filters).length > 0;
  const columns: Column<RoomSummary>[] = [
    { header: 'Name', render: (r) => r.name || <span class="muted">—</span> },
    {
      header: 'ID',
      render: (r) => (
        <a href={`#/rooms/${encodeURIComponent(r.id)}`} class="mono nowrap" title={r.arn}>
          {r.id}
        </a>
      ),
    },
    { header: 'Max. length', class: 'num', render: (r) => <Limit detail={details[r.arn]} pick={(d) => d.maximumMessageLength} /> },
    {
      header: 'Max. msgs/s',
      class: 'num',
      render: (r) => <Limit detail={details[r.arn]} pick={(d) => d.maximumMessageRatePerSecond} />,
    },
    {
      header: 'Review handler',
      render: (r) =>
        r.messageReviewHandler?.uri ? (
          <span class="handler">
            <span class="mono">{r.messageReviewHandler.uri}</span>
            <span class="muted">{` fallback ${r.messageReviewHandler.fallbackResult ?? 'ALLOW'}`}</span>
          </span>
        ) : (
          <span class="muted">—</span>
        ),
    },
    {
      header: 'Logging configurations',
      render: (r) =>
        r.loggingConfigurationIdentifiers?.length ? (
          <ul class="plain-list">
            {r.loggingConfigurationIdentifiers.map((arn) => (
              <li title={arn}>{configs.find((c) => c.arn === arn)?.name || configLabel(arn, configs)}</li>
            ))}
          </ul>
        ) : (
          <span class="muted">—</span>
        ),
    },
    { header: 'Tags', render: (r) => <TagList tags={r.tags} /> },
    { header: 'Updated', render: (r) => <Time iso={r.updateTime} /> },
    {
      header: 'Actions',
      render: (r) => {
        const what = r.name ? `room ${r.name} (${r.id})` : `room ${r.id}`;
        return <RowActions what={what} onEdit={() => openEdit(r)} onDelete={() => setDeleting(r)} />;
      },
    },
  ];

  return (
    <section class="rooms-page">
      <div class="page-head">
        <PageTitle>Rooms</PageTitle>
        <button type="button" class="button-primary" onClick={() => (setStatus(''), setEditing({ mode: 'create' }))}>
          Create room
        </button>
      </div>

      <form class="card filters" onSubmit={applyFilters} aria-label="Filter rooms">
        <Field id="filter-name" field="name" label="Name" error={listError} hint="Exact name.">
          <input id="filter-name" name="name" spellcheck={false} {...fieldProps('filter-name', listError, 'name', true)} />
        </Field>
        <Field
          id="filter-handler"
          field="messageReviewHandlerUri"
          label="Review handler URI"
          error={listError}
          hint="Exact Lambda ARN or webhook URL."
        >
          <input
            id="filter-handler"
            name="messageReviewHandlerUri"
            spellcheck={false}
            {...fieldProps('filter-handler', listError, 'messageReviewHandlerUri', true)}
          />
        </Field>
        <Field id="filter-logging" field="loggingConfigurationIdentifier" label="Logging configuration" error={listError}>
          <select
            id="filter-logging"
            name="loggingConfigurationIdentifier"
            {...fieldProps('filter-logging', listError, 'loggingConfigurationIdentifier')}
          >
            <option value="">Any</option>
            {configs.map((c) => (
              <option value={c.arn}>{configLabel(c.arn, configs)}</option>
            ))}
          </select>
        </Field>
        <div class="filters-actions">
          <button type="submit">Apply filters</button>
          <button type="button" class="button-plain" onClick={clearFilters} disabled={!filtered}>
            Clear filters
          </button>
        </div>
      </form>

      <OkBanner text={status} />
      <ErrorBanner error={bannerError(listError, ['name', 'messageReviewHandlerUri', 'loggingConfigurationIdentifier'])} />
      <ErrorBanner error={rowError} onDismiss={() => setRowError(null)} />
      {configsError !== null && <ErrorBanner error={configsError} onDismiss={() => setConfigsError(null)} />}

      {rooms === null ? (
        <Loading label="Loading rooms…" />
      ) : (
        <div aria-busy={shownFor !== request ? 'true' : undefined}>
          <Table
            caption={filtered ? 'Rooms matching the filters' : 'Rooms'}
            columns={columns}
            rows={rooms}
            rowKey={(r) => r.arn}
            empty={filtered ? 'No room matches the filters.' : 'No rooms yet.'}
          />
        </div>
      )}

      <Pager
        label="Pages of rooms"
        page={page + 1}
        hasPrevious={page > 0}
        hasNext={tokens[page + 1] !== undefined}
        onPrevious={() => setPage((p) => p - 1)}
        onNext={() => setPage((p) => p + 1)}
      >
        <label for="page-size" class="pager-size">
          Rooms per page
        </label>
        <select
          id="page-size"
          value={String(pageSize)}
          onChange={(e) => {
            setPageSize(Number(e.currentTarget.value));
            restart();
          }}
        >
          {PAGE_SIZES.map((n) => (
            <option value={String(n)}>{n}</option>
          ))}
        </select>
      </Pager>

      {editing && (
        <RoomForm
          room={editing.mode === 'edit' ? editing.room : undefined}
          configs={configs}
          onClose={() => setEditing(null)}
          onSaved={(room, created) => {
            setEditing(null);
            setStatus(created ? `Room ${room.name || room.id} created (ID ${room.id}).` : `Room ${room.name || room.id} saved.`);
            reload();
          }}
        />
      )}
      {deleting && (
        <ConfirmDelete
          title="Delete room?"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await callApi('DeleteRoom', { identifier: deleting.arn });
            setDeleting(null);
            setStatus(`Room ${deleting.name || deleting.id} deleted.`);
            reload();
          }}
        >
          <p>
            {'Delete the room '}
            <strong>{deleting.name || deleting.id}</strong>
            {' ('}
            <code>{deleting.id}</code>
            {')? Its connected clients are disconnected. This cannot be undone.'}
          </p>
        </ConfirmDelete>
      )}
    </section>
  );
}

const PLACED = [
  'name',
  'maximumMessageLength',
  'maximumMessageRatePerSecond',
  'messageReviewHandler',
  'loggingConfigurationIdentifiers',
  'tags',
];

/** Create (no room) or edit (room) with every field of the model. */
function RoomForm(props: {
  room?: Room;
  configs: LoggingConfiguration[];
  onClose: () => void;
  onSaved: (room: Room, created: boolean) => void;
}) {
  const { room, configs } = props;
  const [saved, setSaved] = useState<Room | undefined>(room);
  const [name, setName] = useState(room?.name ?? '');
  const [maxLength, setMaxLength] = useState(room ? String(room.maximumMessageLength) : '');
  const [maxRate, setMaxRate] = useState(room ? String(room.maximumMessageRatePerSecond) : '');
  const [uri, setUri] = useState(room?.messageReviewHandler?.uri ?? '');
  const [fallback, setFallback] = useState<FallbackResult>(room?.messageReviewHandler?.fallbackResult ?? 'ALLOW');
  const [lcs, setLcs] = useState<string[]>(room?.loggingConfigurationIdentifiers ?? []);
  const [tags, setTags] = useState<TagRow[]>(() => tagRows(room?.tags));
  const { error, busy, submit } = useCall();

  // Configurations the room names that the list lacks (deleted meanwhile,
  // or not listable by this key) stay selectable, so an edit keeps them.
  const choices = [...configs.map((c) => c.arn), ...lcs.filter((arn) => !configs.some((c) => c.arn === arn))];

  const save = async () => {
    const fields: RoomFields = { name };
    const len = intValue(maxLength);
    const rate = intValue(maxRate);
    if (len !== undefined) fields.maximumMessageLength = len;
    if (rate !== undefined) fields.maximumMessageRatePerSecond = rate;
    if (uri.trim()) fields.messageReviewHandler = { uri: uri.trim(), fallbackResult: fallback };
    else if (saved?.messageReviewHandler?.uri) fields.messageReviewHandler = { uri: '' };
    if (!saved) {
      if (lcs.length) fields.loggingConfigurationIdentifiers = lcs;
      const t = tagsOf(tags);
      const created = await callApi('CreateRoom', Object.keys(t).length ? { ...fields, tags: t } : fields);
      props.onSaved(created, true);
      return;
    }
    fields.loggingConfigurationIdentifiers = lcs;
    const updated = await callApi('UpdateRoom', { identifier: saved.arn, ...fields });
    // A failure of the tag calls leaves the other fields saved: retrying
    // sends the same update again, which changes nothing more.
    setSaved({ ...updated, tags: saved.tags });
    const want = tagsOf(tags);
    await applyTagChanges(saved.arn, saved.tags ?? {}, want);
    props.onSaved({ ...updated, tags: want }, false);
  };

  const lcMessages = fieldErrorsUnder(error, 'loggingConfigurationIdentifiers');
  return (
    <Modal id="room-form" title={room ? `Edit room ${room.name || room.id}` : 'Create room'} onClose={props.onClose}>
      <form onSubmit={submit(save)} noValidate class="modal-form">
        <Field id="room-name" field="name" label="Name" error={error} hint="Up to 128 letters, digits, - and _. Optional.">
          <input
            id="room-name"
            value={name}
            spellcheck={false}
            onInput={(e) => setName(e.currentTarget.value)}
            {...fieldProps('room-name', error, 'name', true)}
          />
        </Field>
        <div class="form-row">
          <Field id="room-max-length" field="maximumMessageLength" label="Maximum message length" error={error} hint="1–500 characters; default 500.">
            <input
              id="room-max-length"
              type="number"
              inputMode="numeric"
              min={1}
              max={500}
              value={maxLength}
              placeholder="500"
              onInput={(e) => setMaxLength(e.currentTarget.value)}
              {...fieldProps('room-max-length', error, 'maximumMessageLength', true)}
            />
          </Field>
          <Field
            id="room-max-rate"
            field="maximumMessageRatePerSecond"
            label="Maximum messages per second"
            error={error}
            hint="1–100; default 10."
          >
            <input
              id="room-max-rate"
              type="number"
              inputMode="numeric"
              min={1}
              max={100}
              value={maxRate}
              placeholder="10"
              onInput={(e) => setMaxRate(e.currentTarget.value)}
              {...fieldProps('room-max-rate', error, 'maximumMessageRatePerSecond', true)}
            />
          </Field>
        </div>
        <fieldset class="group">
          <legend>Message review handler</legend>
          <Field
            id="room-handler-uri"
            field="messageReviewHandler.uri"
            label="Review handler URI"
            error={error}
            hint="A Lambda function ARN or an http(s):// webhook URL; empty for none."
          >
            <input
              id="room-handler-uri"
              value={uri}
              spellcheck={false}
              placeholder="arn:aws:lambda:us-west-2:123456789012:function:review"
              onInput={(e) => setUri(e.currentTarget.value)}
              {...fieldProps('room-handler-uri', error, 'messageReviewHandler.uri', true)}
            />
          </Field>
          <Field
            id="room-handler-fallback"
            field="messageReviewHandler.fallbackResult"
            label="Fallback result"
            error={error}
            hint="Applied when the handler fails or times out."
          >
            <select
              id="room-handler-fallback"
              value={fallback}
              onChange={(e) => setFallback(e.currentTarget.value as FallbackResult)}
              {...fieldProps('room-handler-fallback', error, 'messageReviewHandler.fallbackResult', true)}
            >
              <option value="ALLOW">ALLOW</option>
              <option value="DENY">DENY</option>
            </select>
          </Field>
        </fieldset>
        <fieldset class="group" aria-describedby={lcMessages.length ? 'room-logging-error' : 'room-logging-hint'}>
          <legend>Logging configurations</legend>
          {choices.length === 0 ? (
            <p class="field-hint">
              No logging configurations. <a href="#/logging">Create one</a> first to log this room's messages.
            </p>
          ) : (
            <ul class="checkbox-list">
              {choices.map((arn, i) => (
                <li>
                  <input
                    type="checkbox"
                    id={`room-logging-${i}`}
                    checked={lcs.includes(arn)}
                    onChange={(e) =>
                      setLcs((cur) => (e.currentTarget.checked ? [...cur.filter((x) => x !== arn), arn] : cur.filter((x) => x !== arn)))
                    }
                  />
                  <label for={`room-logging-${i}`}>{configLabel(arn, configs)}</label>
                </li>
              ))}
            </ul>
          )}
          <p class="field-hint" id="room-logging-hint">
            At most 3.
          </p>
          <GroupErrors id="room-logging-error" messages={lcMessages} />
        </fieldset>
        <TagsEditor id="room-tags" rows={tags} onChange={setTags} error={error} />
        <ErrorBanner error={bannerError(error, PLACED)} />
        <DialogActions kind="primary" busy={busy} label={room ? 'Save' : 'Create'} busyLabel="Saving…" onCancel={props.onClose} />
      </form>
    </Modal>
  );
}
