// The server: version, uptime, mode, readiness of its dependencies, live
// totals, the nodes of a cluster and the chat-log spool of each destination
// (GetServerStatus), refreshed every few seconds while the tab is visible.
import { useState } from 'preact/hooks';
import { ApiError, callExtension, type ServerStatus } from '../api';
import { usePolling } from '../poll';
import { ErrorBanner, Loading, PageTitle, Table } from '../ui';
import { formatRate, formatTime } from './room';

export const SERVER_REFRESH_MS = 5000;

/** "3 d 4 h", "2 h 5 min", "42 s". */
export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

export function ServerPage() {
  const [status, setStatus] = useState<ServerStatus | null>(null);
  const [error, setError] = useState<unknown>(null);
  usePolling(async () => {
    try {
      setStatus(await callExtension('GetServerStatus', {}));
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, SERVER_REFRESH_MS);

  return (
    <section class="server-page">
      <PageTitle>Server</PageTitle>
      <ErrorBanner error={error} />
      {error instanceof ApiError && error.code === 'AccessDeniedException' && (
        <p class="muted">This key may not read the server's status (ivschatd:GetServerStatus).</p>
      )}
      {!status ? !error && <Loading /> : <Status s={status} />}
    </section>
  );
}

function Status({ s }: { s: ServerStatus }) {
  const cluster = s.mode === 'cluster';
  return (
    <>
      <div class="server-top">
        <section class="card" aria-labelledby="server-about">
          <h2 id="server-about">This server</h2>
          <dl class="props">
            <dt>Version</dt>
            <dd class="mono" data-prop="version">
              {s.version}
            </dd>
            <dt>Commit</dt>
            <dd class="mono">{s.commit || <span class="muted">(unknown)</span>}</dd>
            <dt>Mode</dt>
            <dd data-prop="mode">{cluster ? 'cluster' : 'single'}</dd>
            <dt>Node</dt>
            <dd class="mono">{s.node}</dd>
            <dt>Started</dt>
            <dd>{formatTime(s.startTime)}</dd>
            <dt>Uptime</dt>
            <dd>{formatUptime(s.uptimeSeconds)}</dd>
          </dl>
        </section>
        <section class="card" aria-labelledby="server-ready">
          <h2 id="server-ready">Readiness</h2>
          <p class={s.ready ? 'badge badge-ok' : 'badge badge-bad'} data-prop="ready">
            {s.ready ? 'Ready' : 'Not ready'}
          </p>
          {s.checks.length === 0 ? (
            <p class="muted">No dependencies to check.</p>
          ) : (
            <ul class="checks">
              {s.checks.map((c) => (
                <li key={c.name} class={c.ok ? 'check-ok' : 'check-bad'}>
                  <span class="check-mark" aria-hidden="true">
                    {c.ok ? '✓' : '✗'}
                  </span>{' '}
                  <strong>{c.name}</strong>: {c.ok ? 'ok' : 'failing'}
                  {c.error && <span class="mono"> — {c.error}</span>}
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
      <section class="card" aria-labelledby="server-totals">
        <h2 id="server-totals">{cluster ? 'Cluster totals' : 'Totals'}</h2>
        <dl class="figures">
          <div class="figure">
            <dt>Connections</dt>
            <dd data-figure="connections">{s.totals.connections}</dd>
          </div>
          <div class="figure">
            <dt>Rooms with connections</dt>
            <dd data-figure="rooms">{s.totals.roomsWithConnections}</dd>
          </div>
          <div class="figure">
            <dt>Deliveries/s</dt>
            <dd data-figure="deliveries">{formatRate(s.totals.deliveriesPerSecond)}</dd>
          </div>
          <div class="figure">
            <dt>Messages/s</dt>
            <dd data-figure="messages">{formatRate(s.totals.messagesPerSecond)}</dd>
          </div>
        </dl>
        <p class="field-hint">
          {s.sampledAt ? `Sampled ${formatTime(s.sampledAt)}. ` : ''}
          {s.nodesMissing > 0 && `${s.nodesMissing} node(s) did not answer. `}
          Refreshes every {SERVER_REFRESH_MS / 1000} s while this page is visible.
        </p>
      </section>
      {cluster && (
        <section aria-labelledby="server-nodes">
          <h2 id="server-nodes">Nodes</h2>
          <Table
            caption="Nodes of the cluster"
            captionHidden
            rows={s.nodes}
            rowKey={(n) => n.node}
            empty="No node answered."
            columns={[
              { header: 'Node', render: (n) => <span class="mono">{n.node}</span> },
              { header: 'Version', render: (n) => <span class="mono">{n.version}</span> },
              { header: 'Started', render: (n) => formatTime(n.startTime) },
              { header: 'Connections', render: (n) => n.connections, class: 'num' },
              { header: 'Rooms', render: (n) => n.roomsWithConnections, class: 'num' },
              { header: 'Deliveries/s', render: (n) => formatRate(n.deliveriesPerSecond), class: 'num' },
            ]}
          />
        </section>
      )}
      <section aria-labelledby="server-chatlog">
        <h2 id="server-chatlog">Chat logging</h2>
        <Table
          caption="Chat-log destinations and their spool"
          captionHidden
          rows={s.chatLog}
          rowKey={(d) => `${d.node}\u0000${d.destination}`}
          empty="No chat logging destination is in use."
          columns={[
            { header: 'Destination', render: (d) => <span class="mono">{d.destination}</span> },
            { header: 'Type', key: 'type' },
            ...(cluster ? [{ header: 'Node', render: (d: ServerStatus['chatLog'][number]) => <span class="mono">{d.node}</span> }] : []),
            { header: 'Spool', render: (d) => formatBytes(d.spoolBytes), class: 'num' },
            { header: 'Spooled', render: (d) => d.spooledRecords, class: 'num' },
            { header: 'Delivered', render: (d) => d.deliveredRecords, class: 'num' },
            { header: 'Dropped', render: (d) => d.droppedRecords, class: 'num' },
            { header: 'Failed to spool', render: (d) => d.failedToSpoolRecords, class: 'num' },
            { header: 'Failed attempts', render: (d) => d.failedAttempts, class: 'num' },
          ]}
        />
      </section>
    </>
  );
}
