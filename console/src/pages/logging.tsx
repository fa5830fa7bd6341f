// The Logging configurations page: ListLoggingConfigurations ("Load more"
// over nextToken), create (S3 / CloudWatch Logs / Firehose), edit (name,
// destination, tags) and delete. A configuration in a transitional state
// (CREATING, UPDATING, DELETING) is re-read with GetLoggingConfiguration
// every second while the page is visible, until it settles.
import { useEffect, useState } from 'preact/hooks';
import {
  ApiError,
  callApi,
  type DestinationConfiguration,
  type LoggingConfiguration,
  type LoggingConfigurationState,
} from '../api';
import { ErrorBanner, Field, fieldProps, Loading, OkBanner, PageTitle, Table, useCall, type Column } from '../ui';
import {
  applyTagChanges,
  bannerError,
  ConfirmDelete,
  DialogActions,
  Modal,
  RowActions,
  TagList,
  TagsEditor,
  tagRows,
  tagsOf,
  Time,
  type TagRow,
} from './forms';

const POLL_INTERVAL_MS = 1000;

export function isTransitional(state: LoggingConfigurationState): boolean {
  return state === 'CREATING' || state === 'UPDATING' || state === 'DELETING';
}

type DestinationType = 's3' | 'cloudWatchLogs' | 'firehose';

/** Per type: the label of its choice, the label of its one field, that field's API path and its limits. */
const DESTINATIONS: Record<DestinationType, { choice: string; label: string; field: string; hint: string }> = {
  s3: {
    choice: 'Amazon S3',
    label: 'S3 bucket name',
    field: 'destinationConfiguration.s3.bucketName',
    hint: '3–63 lower-case letters, digits, - and .',
  },
  cloudWatchLogs: {
    choice: 'CloudWatch Logs',
    label: 'Log group name',
    field: 'destinationConfiguration.cloudWatchLogs.logGroupName',
    hint: '1–512 letters, digits and . - _ / #',
  },
  firehose: {
    choice: 'Kinesis Data Firehose',
    label: 'Delivery stream name',
    field: 'destinationConfiguration.firehose.deliveryStreamName',
    hint: '1–64 letters, digits and _ . -',
  },
};

function destinationOf(d: DestinationConfiguration): { type: DestinationType; value: string } {
  if (d.s3) return { type: 's3', value: d.s3.bucketName };
  if (d.cloudWatchLogs) return { type: 'cloudWatchLogs', value: d.cloudWatchLogs.logGroupName };
  if (d.firehose) return { type: 'firehose', value: d.firehose.deliveryStreamName };
  return { type: 's3', value: '' };
}

function destinationConfiguration(type: DestinationType, value: string): DestinationConfiguration {
  switch (type) {
    case 's3':
      return { s3: { bucketName: value } };
    case 'cloudWatchLogs':
      return { cloudWatchLogs: { logGroupName: value } };
    case 'firehose':
      return { firehose: { deliveryStreamName: value } };
  }
}

function Destination({ d }: { d: DestinationConfiguration }) {
  const { type, value } = destinationOf(d);
  const label = { s3: 'S3 bucket', cloudWatchLogs: 'CloudWatch Logs group', firehose: 'Firehose stream' }[type];
  return (
    <span>
      <span class="muted">{`${label} `}</span>
      <span class="mono">{value}</span>
    </span>
  );
}

function State({ state }: { state: LoggingConfigurationState }) {
  const kind = state === 'ACTIVE' ? 'ok' : state.endsWith('_FAILED') ? 'failed' : 'busy';
  return (
    <span class={`state state-${kind}`}>
      {state}
      {kind === 'busy' && <span class="visually-hidden"> (refreshing)</span>}
    </span>
  );
}

/**
 * Re-reads every transitional configuration each POLL_INTERVAL_MS while
 * the document is visible; a hidden page stops and resumes when shown. A
 * configuration that is gone (deleted) leaves the list. Errors other than
 * a passing throttle or outage stop the polling and are reported.
 */
function usePolling(
  items: LoggingConfiguration[],
  update: (arn: string, lc: LoggingConfiguration | null) => void,
  onError: (err: unknown) => void,
) {
  const pending = items.filter((i) => isTransitional(i.state)).map((i) => i.arn);
  const key = pending.join(' ');
  useEffect(() => {
    if (!key) return;
    const arns = key.split(' ');
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const schedule = () => {
      clearTimeout(timer);
      timer = document.visibilityState === 'visible' ? setTimeout(tick, POLL_INTERVAL_MS) : undefined;
    };
    const tick = async () => {
      timer = undefined;
      if (document.visibilityState !== 'visible') return;
      for (const arn of arns) {
        try {
          const lc = await callApi('GetLoggingConfiguration', { identifier: arn });
          if (!stopped) update(arn, lc);
        } catch (err) {
          if (stopped) return;
          if (err instanceof ApiError && err.code === 'ResourceNotFoundException') {
            update(arn, null);
            continue;
          }
          const passing = err instanceof ApiError && (err.status === 0 || err.status === 429 || err.status >= 500);
          if (!passing) {
            onError(err);
            stopped = true;
            return;
          }
        }
      }
      // Still transitional (the list did not change key): ask again.
      if (!stopped) schedule();
    };
    const onVisibility = () => {
      if (!stopped && document.visibilityState === 'visible' && timer === undefined) schedule();
    };
    document.addEventListener('visibilitychange', onVisibility);
    schedule();
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
    // update and onError only set state; key says everything that matters.
  }, [key]);
}

export function LoggingPage() {
  const [items, setItems] = useState<LoggingConfiguration[] | null>(null);
  const [nextToken, setNextToken] = useState<string | undefined>();
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState('');
  const [reloads, setReloads] = useState(0);
  // The reload the shown list answers; the table is aria-busy until the current one's is in.
  const [shown, setShown] = useState(-1);
  const [editing, setEditing] = useState<{ lc?: LoggingConfiguration } | null>(null);
  const [deleting, setDeleting] = useState<LoggingConfiguration | null>(null);

  useEffect(() => {
    let cancelled = false;
    callApi('ListLoggingConfigurations', { maxResults: 50 }).then(
      (out) => {
        if (cancelled) return;
        setItems(out.loggingConfigurations);
        setNextToken(out.nextToken);
        setShown(reloads);
      },
      (err) => {
        if (cancelled) return;
        setItems([]);
        setError(err);
        setShown(reloads);
      },
    );
    return () => {
      cancelled = true;
    };
  }, [reloads]);

  const loadMore = async () => {
    try {
      const out = await callApi('ListLoggingConfigurations', { maxResults: 50, nextToken });
      setItems((cur) => [...(cur ?? []), ...out.loggingConfigurations.filter((n) => !cur?.some((c) => c.arn === n.arn))]);
      setNextToken(out.nextToken);
    } catch (err) {
      setError(err);
    }
  };

  const put = (arn: string, lc: LoggingConfiguration | null) =>
    setItems((cur) => (cur ?? []).flatMap((c) => (c.arn !== arn ? [c] : lc ? [lc] : [])));
  usePolling(items ?? [], put, setError);

  const reload = () => {
    setError(null);
    setReloads((n) => n + 1);
  };

  const columns: Column<LoggingConfiguration>[] = [
    { header: 'Name', render: (c) => c.name || <span class="muted">—</span> },
    { header: 'ID', render: (c) => <span class="mono" title={c.arn}>{c.id}</span> },
    { header: 'Destination', render: (c) => <Destination d={c.destinationConfiguration} /> },
    { header: 'State', render: (c) => <State state={c.state} /> },
    { header: 'Tags', render: (c) => <TagList tags={c.tags} /> },
    { header: 'Updated', render: (c) => <Time iso={c.updateTime} /> },
    {
      header: 'Actions',
      render: (c) => {
        const what = c.name ? `logging configuration ${c.name} (${c.id})` : `logging configuration ${c.id}`;
        return <RowActions what={what} onEdit={() => (setStatus(''), setEditing({ lc: c }))} onDelete={() => setDeleting(c)} />;
      },
    },
  ];

  return (
    <section class="logging-page">
      <div class="page-head">
        <PageTitle>Logging configurations</PageTitle>
        <button type="button" class="button-primary" onClick={() => (setStatus(''), setEditing({}))}>
          Create logging configuration
        </button>
      </div>
      <p class="muted page-intro">
        Where rooms' chat logs go. Attach them to rooms on the <a href="#/rooms">Rooms</a> page.
      </p>
      <OkBanner text={status} />
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
      {items === null ? (
        <Loading label="Loading logging configurations…" />
      ) : (
        <div aria-busy={shown !== reloads ? 'true' : undefined}>
          <Table
            caption="Logging configurations"
            columns={columns}
            rows={items}
            rowKey={(c) => c.arn}
            empty="No logging configurations yet."
            captionHidden
          />
        </div>
      )}
      {nextToken && (
        <div class="pager">
          <button type="button" onClick={loadMore}>
            Load more
          </button>
        </div>
      )}
      {editing && (
        <LoggingForm
          lc={editing.lc}
          onClose={() => setEditing(null)}
          onSaved={(lc, created) => {
            setEditing(null);
            setStatus(`Logging configuration ${lc.name || lc.id} ${created ? 'created' : 'saved'}; state ${lc.state}.`);
            reload();
          }}
        />
      )}
      {deleting && (
        <ConfirmDelete
          title="Delete logging configuration?"
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await callApi('DeleteLoggingConfiguration', { identifier: deleting.arn });
            put(deleting.arn, null);
            setDeleting(null);
            setStatus(`Logging configuration ${deleting.name || deleting.id} deleted.`);
            reload();
          }}
        >
          <p>
            {'Delete the logging configuration '}
            <strong>{deleting.name || deleting.id}</strong>
            {' ('}
            <code>{deleting.id}</code>
            {')? The server refuses while rooms still use it: detach it from them first.'}
          </p>
        </ConfirmDelete>
      )}
    </section>
  );
}

function LoggingForm(props: {
  lc?: LoggingConfiguration;
  onClose: () => void;
  onSaved: (lc: LoggingConfiguration, created: boolean) => void;
}) {
  const { lc } = props;
  const initial = lc ? destinationOf(lc.destinationConfiguration) : { type: 's3' as DestinationType, value: '' };
  const [saved, setSaved] = useState<LoggingConfiguration | undefined>(lc);
  const [name, setName] = useState(lc?.name ?? '');
  const [type, setType] = useState<DestinationType>(initial.type);
  const [value, setValue] = useState(initial.value);
  const [tags, setTags] = useState<TagRow[]>(() => tagRows(lc?.tags));
  const { error, busy, submit } = useCall();
  const dest = DESTINATIONS[type];

  const save = async () => {
    const destinationConfiguration_ = destinationConfiguration(type, value.trim());
    if (!saved) {
      const t = tagsOf(tags);
      const created = await callApi('CreateLoggingConfiguration', {
        name,
        destinationConfiguration: destinationConfiguration_,
        ...(Object.keys(t).length ? { tags: t } : {}),
      });
      props.onSaved(created, true);
      return;
    }
    const updated = await callApi('UpdateLoggingConfiguration', {
      identifier: saved.arn,
      name,
      destinationConfiguration: destinationConfiguration_,
    });
    setSaved({ ...updated, tags: saved.tags });
    const want = tagsOf(tags);
    await applyTagChanges(saved.arn, saved.tags ?? {}, want);
    props.onSaved({ ...updated, tags: want }, false);
  };

  return (
    <Modal id="logging-form" title={lc ? `Edit logging configuration ${lc.name || lc.id}` : 'Create logging configuration'} onClose={props.onClose}>
      <form onSubmit={submit(save)} noValidate class="modal-form">
        <Field id="lc-name" field="name" label="Name" error={error} hint="Up to 128 letters, digits, - and _. Optional.">
          <input id="lc-name" value={name} spellcheck={false} onInput={(e) => setName(e.currentTarget.value)} {...fieldProps('lc-name', error, 'name', true)} />
        </Field>
        <fieldset class="group">
          <legend>Destination</legend>
          <div class="radio-row" role="radiogroup" aria-label="Destination type">
            {(Object.keys(DESTINATIONS) as DestinationType[]).map((t) => (
              <span class="radio">
                <input type="radio" id={`lc-type-${t}`} name="lc-type" value={t} checked={type === t} onChange={() => setType(t)} />
                <label for={`lc-type-${t}`}>{DESTINATIONS[t].choice}</label>
              </span>
            ))}
          </div>
          <Field id="lc-destination" field={dest.field} label={dest.label} error={error} hint={dest.hint}>
            <input
              id="lc-destination"
              value={value}
              spellcheck={false}
              onInput={(e) => setValue(e.currentTarget.value)}
              {...fieldProps('lc-destination', error, dest.field, true)}
            />
          </Field>
          {!lc && (
            <p class="field-hint">
              Without an endpoint setting for this kind, the server writes the logs as files under its data directory.
            </p>
          )}
        </fieldset>
        <TagsEditor id="lc-tags" rows={tags} onChange={setTags} error={error} />
        <ErrorBanner error={bannerError(error, ['name', dest.field, 'tags'])} />
        <DialogActions kind="primary" busy={busy} label={lc ? 'Save' : 'Create'} busyLabel="Saving…" onCancel={props.onClose} />
      </form>
    </Modal>
  );
}
