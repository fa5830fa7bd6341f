// Key/value rows for string maps (chat token attributes, event attributes):
// each row is a labelled key and value input with a remove button.
import { useRef } from 'preact/hooks';

export interface AttributeRow {
  id: number;
  key: string;
  value: string;
}

let nextRowId = 1;

export function newRow(key = '', value = ''): AttributeRow {
  return { id: nextRowId++, key, value };
}

/** The rows as a map (rows with an empty key are left out), or undefined when there are none. */
export function rowsToMap(rows: AttributeRow[]): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let any = false;
  for (const r of rows) {
    if (r.key.trim() === '') continue;
    out[r.key] = r.value;
    any = true;
  }
  return any ? out : undefined;
}

/**
 * A fieldset of attribute rows. label names the map ("Token attributes");
 * each input is labelled "<noun> <n> key/value" for screen readers.
 */
export function AttributeRows(props: {
  idPrefix: string;
  legend: string;
  noun: string;
  rows: AttributeRow[];
  onChange: (rows: AttributeRow[]) => void;
  error?: string;
  disabled?: boolean;
}) {
  const { rows, onChange, idPrefix, noun } = props;
  const addRef = useRef<HTMLButtonElement>(null);
  const set = (id: number, patch: Partial<AttributeRow>) => onChange(rows.map((r) => (r.id === id ? { ...r, ...patch } : r)));
  const remove = (id: number) => {
    onChange(rows.filter((r) => r.id !== id));
    // The removed row's button is gone: keep the keyboard user in the list.
    addRef.current?.focus();
  };
  return (
    <fieldset class="attr-rows" disabled={props.disabled} aria-describedby={props.error ? `${idPrefix}-error` : undefined}>
      <legend>{props.legend}</legend>
      {rows.length === 0 && <p class="field-hint">None.</p>}
      {rows.map((r, i) => (
        <div class="attr-row" key={r.id}>
          <input
            id={`${idPrefix}-${r.id}-key`}
            aria-label={`${noun} ${i + 1} key`}
            placeholder="key"
            spellcheck={false}
            value={r.key}
            onInput={(e) => set(r.id, { key: e.currentTarget.value })}
          />
          <input
            id={`${idPrefix}-${r.id}-value`}
            aria-label={`${noun} ${i + 1} value`}
            placeholder="value"
            spellcheck={false}
            value={r.value}
            onInput={(e) => set(r.id, { value: e.currentTarget.value })}
          />
          <button type="button" class="button-plain" onClick={() => remove(r.id)} aria-label={`Remove ${noun.toLowerCase()} ${i + 1}`}>
            Remove
          </button>
        </div>
      ))}
      <button type="button" ref={addRef} onClick={() => onChange([...rows, newRow()])}>
        Add {noun.toLowerCase()}
      </button>
      {props.error && (
        <p class="field-error" id={`${idPrefix}-error`}>
          {props.error}
        </p>
      )}
    </fieldset>
  );
}
