// Pieces the Rooms and Logging configurations pages share: a modal dialog,
// a delete confirmation, a tags editor (with the Tag/Untag calls an edit
// needs), tag chips, a time stamp and helpers that place an ApiError's
// fieldList next to the controls it names.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { ApiError, callApi, type Tags } from '../api';
import { ErrorBanner, useCall } from '../ui';

/**
 * A modal <dialog>: the browser traps focus in it, Escape closes it (as
 * onClose) and focus returns where it was. Render it only while open.
 */
export function Modal(props: { id: string; title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      class="modal"
      aria-labelledby={`${props.id}-title`}
      onCancel={(e) => {
        e.preventDefault();
        props.onClose();
      }}
    >
      <h2 id={`${props.id}-title`}>{props.title}</h2>
      {props.children}
    </dialog>
  );
}

/** Asks before a deletion; shows the API's refusal (a ConflictException, say) in place. */
export function ConfirmDelete(props: {
  title: string;
  children: ComponentChildren;
  onConfirm: () => Promise<void>;
  onClose: () => void;
}) {
  const call = useCall();
  return (
    <Modal id="confirm-delete" title={props.title} onClose={props.onClose}>
      <form onSubmit={call.submit(props.onConfirm)} class="modal-form">
        <div class="modal-body">{props.children}</div>
        <ErrorBanner error={call.error} />
        <DialogActions kind="danger" busy={call.busy} label="Delete" busyLabel="Deleting…" onCancel={props.onClose} />
      </form>
    </Modal>
  );
}

/** A dialog's submit button (busyLabel while its call runs) and Cancel. */
export function DialogActions(props: {
  kind: 'primary' | 'danger';
  busy: boolean;
  label: string;
  busyLabel: string;
  onCancel: () => void;
}) {
  return (
    <div class="form-actions">
      <button type="submit" class={`button-${props.kind}`} disabled={props.busy}>
        {props.busy ? props.busyLabel : props.label}
      </button>
      <button type="button" onClick={props.onCancel}>
        Cancel
      </button>
    </div>
  );
}

/** A table row's Edit and Delete buttons; what names the row for screen readers. */
export function RowActions(props: { what: string; onEdit: () => void; onDelete: () => void }) {
  return (
    <div class="row-actions">
      <button type="button" onClick={props.onEdit} aria-label={`Edit ${props.what}`}>
        Edit
      </button>
      <button type="button" class="button-danger-plain" onClick={props.onDelete} aria-label={`Delete ${props.what}`}>
        Delete
      </button>
    </div>
  );
}

/** The messages of fieldList entries named prefix, prefix.x or prefix[i]. */
export function fieldErrorsUnder(error: unknown, prefix: string): string[] {
  if (!(error instanceof ApiError) || !error.fieldList) return [];
  return error.fieldList
    .filter((f) => f.name === prefix || f.name.startsWith(`${prefix}.`) || f.name.startsWith(`${prefix}[`))
    .map((f) => (f.name === prefix ? f.message : `${f.name}: ${f.message}`));
}

/**
 * The error for the form's banner: any failure except a ValidationException
 * whose every field the form shows next to a control (named in placed, or
 * under one of them).
 */
export function bannerError(error: unknown, placed: string[]): unknown {
  if (!(error instanceof ApiError) || error.code !== 'ValidationException' || !error.fieldList?.length) return error;
  const shown = (name: string) => placed.some((p) => name === p || name.startsWith(`${p}.`) || name.startsWith(`${p}[`));
  return error.fieldList.every((f) => shown(f.name)) ? null : error;
}

/** A fieldset's own error list (for groups such as tags), tied to it with aria-describedby. */
export function GroupErrors({ id, messages }: { id: string; messages: string[] }) {
  if (messages.length === 0) return null;
  return (
    <ul class="field-error group-errors" id={id}>
      {messages.map((m) => (
        <li>{m}</li>
      ))}
    </ul>
  );
}

export interface TagRow {
  /** Stable across edits, for keys and ids. */
  n: number;
  key: string;
  value: string;
}

let tagRowCounter = 0;

export function tagRows(tags: Tags | undefined): TagRow[] {
  return Object.entries(tags ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => ({ n: ++tagRowCounter, key, value }));
}

/** The tags the rows say; a row with neither key nor value is ignored. */
export function tagsOf(rows: TagRow[]): Tags {
  const tags: Tags = {};
  for (const r of rows) {
    if (r.key === '' && r.value === '') continue;
    tags[r.key] = r.value;
  }
  return tags;
}

/** Key/value rows with add and remove; errors are fieldList entries under "tags". */
export function TagsEditor(props: { id: string; rows: TagRow[]; onChange: (rows: TagRow[]) => void; error?: unknown }) {
  const { id, rows, onChange } = props;
  const messages = fieldErrorsUnder(props.error, 'tags');
  const set = (n: number, patch: Partial<TagRow>) => onChange(rows.map((r) => (r.n === n ? { ...r, ...patch } : r)));
  return (
    <fieldset class="group" aria-describedby={messages.length ? `${id}-error` : undefined}>
      <legend>Tags</legend>
      {rows.length === 0 && <p class="field-hint">No tags.</p>}
      {rows.map((r, i) => (
        <div class="tag-row" key={r.n}>
          <label class="visually-hidden" for={`${id}-key-${r.n}`}>{`Tag ${i + 1} key`}</label>
          <input
            id={`${id}-key-${r.n}`}
            placeholder="Key"
            value={r.key}
            spellcheck={false}
            aria-invalid={messages.length ? 'true' : undefined}
            onInput={(e) => set(r.n, { key: e.currentTarget.value })}
          />
          <label class="visually-hidden" for={`${id}-value-${r.n}`}>{`Tag ${i + 1} value`}</label>
          <input
            id={`${id}-value-${r.n}`}
            placeholder="Value"
            value={r.value}
            spellcheck={false}
            onInput={(e) => set(r.n, { value: e.currentTarget.value })}
          />
          <button type="button" class="button-plain" onClick={() => onChange(rows.filter((x) => x.n !== r.n))}>
            Remove<span class="visually-hidden">{` tag ${i + 1}`}</span>
          </button>
        </div>
      ))}
      <button type="button" onClick={() => onChange([...rows, { n: ++tagRowCounter, key: '', value: '' }])}>
        Add tag
      </button>
      <p class="field-hint">Up to 50; keys 1–128 characters (not starting with aws:), values up to 256.</p>
      <GroupErrors id={`${id}-error`} messages={messages} />
    </fieldset>
  );
}

/**
 * Makes arn's tags go from before to after: TagResource for new and changed
 * values, UntagResource for keys that went. Each is skipped when not needed.
 */
export async function applyTagChanges(arn: string, before: Tags, after: Tags): Promise<void> {
  const put: Tags = {};
  for (const [k, v] of Object.entries(after)) if (before[k] !== v) put[k] = v;
  const gone = Object.keys(before).filter((k) => !(k in after));
  if (Object.keys(put).length) await callApi('TagResource', { resourceArn: arn, tags: put });
  if (gone.length) await callApi('UntagResource', { resourceArn: arn, tagKeys: gone });
}

/** Tags as key=value chips. */
export function TagList({ tags }: { tags?: Tags }) {
  const entries = Object.entries(tags ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (entries.length === 0) return <span class="muted">—</span>;
  return (
    <ul class="chips">
      {entries.map(([k, v]) => (
        <li class="chip">
          <span class="chip-key">{k}</span>
          {v !== '' && <span>{`=${v}`}</span>}
        </li>
      ))}
    </ul>
  );
}

const pad = (n: number) => String(n).padStart(2, '0');

/** A time stamp in local time, YYYY-MM-DD HH:MM:SS, with the API's value as its title. */
export function Time({ iso }: { iso?: string }) {
  if (!iso) return <span class="muted">—</span>;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return <span>{iso}</span>;
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return (
    <time dateTime={iso} title={iso} class="nowrap">
      {text}
    </time>
  );
}

/**
 * An integer input's value for the API: undefined when empty, the number
 * when it is one, else the text itself, so the API names the field in its
 * ValidationException rather than the console guessing.
 */
export function intValue(s: string): number | undefined {
  const t = s.trim();
  if (t === '') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : (t as unknown as number);
}

/** Previous/Next over an API's nextToken pages. */
export function Pager(props: {
  label: string;
  page: number;
  hasPrevious: boolean;
  hasNext: boolean;
  onPrevious: () => void;
  onNext: () => void;
  children?: ComponentChildren;
}) {
  return (
    <nav class="pager" aria-label={props.label}>
      <button type="button" onClick={props.onPrevious} disabled={!props.hasPrevious}>
        Previous
      </button>
      <span class="pager-page" aria-live="polite">{`Page ${props.page}`}</span>
      <button type="button" onClick={props.onNext} disabled={!props.hasNext}>
        Next
      </button>
      {props.children}
    </nav>
  );
}
