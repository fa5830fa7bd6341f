// Small shared pieces for the pages: banners, a form's call state, field
// errors, loading state and a table. No inline styles anywhere: the Content-Security-Policy
// is style-src 'self', so all styling lives in app.css (classes only).
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from './api';

/** The text shown for an error: "code: message" for API errors. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** A banner for a failed call; renders nothing without an error. */
export function ErrorBanner({ error, onDismiss }: { error: unknown; onDismiss?: () => void }) {
  if (error === null || error === undefined) return null;
  return (
    <div class="banner banner-error" role="alert">
      <span class="banner-text">{errorText(error)}</span>
      {onDismiss && (
        <button type="button" class="button-plain" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

/** A banner for what a call did; renders nothing while text is empty. */
export function OkBanner({ text }: { text: string }) {
  if (!text) return null;
  return (
    <p class="banner banner-ok" role="status">
      {text}
    </p>
  );
}

/**
 * The state of a form's call: busy while it runs (the form's button is
 * disabled), then its error if it failed (the form shows it). submit(action)
 * is a form's onSubmit: no page load, the last error cleared, busy around
 * action. Every form of the console goes through it, so a refused call is
 * shown the same way everywhere.
 */
export function useCall() {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  const submit = (action: () => Promise<void>) => (e: Event) => {
    e.preventDefault();
    void run(action);
  };
  return { error, setError, busy, run, submit };
}

/** The message a ValidationException's fieldList gives for field, if any. */
export function fieldError(error: unknown, field: string): string | undefined {
  if (!(error instanceof ApiError) || !error.fieldList) return undefined;
  return error.fieldList.find((f) => f.name === field)?.message;
}

/**
 * A labelled form control with its validation message underneath. The
 * control (children) must carry id={id}; pass it fieldProps(...) too, so
 * screen readers announce the message.
 */
export function Field(props: {
  id: string;
  label: string;
  /** The API's field name in fieldList (defaults to id). */
  field?: string;
  error?: unknown;
  hint?: string;
  children: ComponentChildren;
}) {
  const message = fieldError(props.error, props.field ?? props.id);
  return (
    <div class={message ? 'field field-invalid' : 'field'}>
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.hint && (
        <p class="field-hint" id={`${props.id}-hint`}>
          {props.hint}
        </p>
      )}
      {message && (
        <p class="field-error" id={`${props.id}-error`}>
          {message}
        </p>
      )}
    </div>
  );
}

/** aria attributes tying a control to its Field's hint and error. */
export function fieldProps(id: string, error?: unknown, field?: string, hint?: boolean) {
  const invalid = fieldError(error, field ?? id) !== undefined;
  const describedBy = [hint ? `${id}-hint` : '', invalid ? `${id}-error` : ''].filter(Boolean).join(' ');
  return { 'aria-invalid': invalid ? ('true' as const) : undefined, 'aria-describedby': describedBy || undefined };
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p class="loading" role="status">
      {label}
    </p>
  );
}

export interface Column<T> {
  header: string;
  /** The cell's content; defaults to String(row[key]). */
  render?: (row: T) => ComponentChildren;
  key?: keyof T & string;
  class?: string;
}

/** A plain data table; scrolls sideways on narrow screens. */
export function Table<T>(props: {
  caption: string;
  columns: Column<T>[];
  rows: T[];
  rowKey: (row: T) => string;
  empty?: string;
  captionHidden?: boolean;
}) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={props.caption}>
      <table>
        <caption class={props.captionHidden ? 'visually-hidden' : undefined}>{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th scope="col" class={c.class}>
                {c.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.length === 0 ? (
            <tr>
              <td colSpan={props.columns.length} class="table-empty">
                {props.empty ?? 'Nothing to show.'}
              </td>
            </tr>
          ) : (
            props.rows.map((row) => (
              <tr key={props.rowKey(row)}>
                {props.columns.map((c) => (
                  <td class={c.class}>{c.render ? c.render(row) : c.key ? String(row[c.key] ?? '') : ''}</td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}

/** The page's main heading; sets the document title too. */
export function PageTitle({ children }: { children: string }): JSX.Element {
  useEffect(() => {
    document.title = `${children} · ivschatd console`;
  }, [children]);
  return <h1>{children}</h1>;
}
