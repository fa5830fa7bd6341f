// One room: its fields and tags (GetRoom), its live figures (GetRoomStats)
// and connections (ListRoomConnections) refreshed every few seconds while
// the tab is visible, the live chat panel, and the room's bans.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, callApi, callExtension, type Room, type RoomConnection, type RoomStats } from '../api';
import { usePolling } from '../poll';
import { ErrorBanner, Loading, PageTitle, Table } from '../ui';
import { BanDialog, BansSection, banSummary, type BanChange } from './bans';
import { ChatPanel } from './chatpanel';

/** How often the live figures refresh while the page is visible. */
export const ROOM_REFRESH_MS = 3000;
/** Connections listed at most (one page of ListRoomConnections). */
const CONNECTIONS_SHOWN = 100;

export function formatTime(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function formatRate(n: number): string {
  if (n === 0) return '0';
  if (n < 10) return n.toFixed(2);
  if (n < 1000) return n.toFixed(1);
  return Math.round(n).toLocaleString();
}

/** One room: id is the room ID from the route #/rooms/<id>. */
export function RoomPage({ id }: { id: string }) {
  // A new room is a new page: no state carries over (nor a chat connection).
  return <RoomView key={id} id={id} />;
}

function RoomView({ id }: { id: string }) {
  const [room, setRoom] = useState<Room | null>(null);
  const [error, setError] = useState<unknown>(null);
  // The user a Connections row's Ban asks about, and the bans made that way
  // (the Bans section reloads and says so).
  const [banTarget, setBanTarget] = useState<string | null>(null);
  const [banChange, setBanChange] = useState<BanChange>({ n: 0, text: '' });
  useEffect(() => {
    let live = true;
    callApi('GetRoom', { identifier: id }).then(
      (r) => live && setRoom(r),
      (err) => live && setError(err),
    );
    return () => {
      live = false;
    };
  }, [id]);

  const title = room?.name ? `Room ${room.name}` : `Room ${id}`;
  return (
    <section class="room-page">
      <p class="breadcrumb">
        <a href="#/rooms">Rooms</a> / <span class="mono">{id}</span>
      </p>
      <PageTitle>{title}</PageTitle>
      {error !== null ? (
        <ErrorBanner error={error} />
      ) : !room ? (
        <Loading label="Loading the room…" />
      ) : (
        <>
          <div class="room-top">
            <RoomDetails room={room} />
            <LiveFigures room={room} onBan={setBanTarget} />
          </div>
          <ChatPanel room={room} />
          <BansSection room={room} change={banChange} />
          {banTarget !== null && (
            <BanDialog
              room={room}
              userId={banTarget}
              onClose={() => setBanTarget(null)}
              onBanned={(ban) => {
                setBanTarget(null);
                setBanChange((c) => ({ n: c.n + 1, text: banSummary(ban) }));
              }}
            />
          )}
        </>
      )}
    </section>
  );
}

function RoomDetails({ room }: { room: Room }) {
  const tags = Object.entries(room.tags ?? {});
  const logging = room.loggingConfigurationIdentifiers ?? [];
  const handler = room.messageReviewHandler;
  return (
    <section class="card room-details" aria-labelledby="details-title">
      <h2 id="details-title">Details</h2>
      <dl class="props">
        <dt>Name</dt>
        <dd>{room.name || <span class="muted">(none)</span>}</dd>
        <dt>ID</dt>
        <dd class="mono">{room.id}</dd>
        <dt>ARN</dt>
        <dd class="mono">{room.arn}</dd>
        <dt>Maximum message rate</dt>
        <dd>{room.maximumMessageRatePerSecond} per second</dd>
        <dt>Maximum message length</dt>
        <dd>{room.maximumMessageLength} characters</dd>
        <dt>Message review handler</dt>
        <dd>
          {handler?.uri ? (
            <>
              <span class="mono">{handler.uri}</span> (fallback {handler.fallbackResult ?? 'ALLOW'})
            </>
          ) : (
            <span class="muted">(none)</span>
          )}
        </dd>
        <dt>Logging configurations</dt>
        <dd>
          {logging.length === 0 ? (
            <span class="muted">(none)</span>
          ) : (
            <ul class="plain-list">
              {logging.map((l) => (
                <li class="mono" key={l}>
                  {l}
                </li>
              ))}
            </ul>
          )}
        </dd>
        <dt>Tags</dt>
        <dd>
          {tags.length === 0 ? (
            <span class="muted">(none)</span>
          ) : (
            <ul class="tag-list">
              {tags.map(([k, v]) => (
                <li class="tag" key={k}>
                  <span class="mono">{k}</span> = <span class="mono">{v}</span>
                </li>
              ))}
            </ul>
          )}
        </dd>
        <dt>Created</dt>
        <dd>{formatTime(room.createTime)}</dd>
        <dt>Updated</dt>
        <dd>{formatTime(room.updateTime)}</dd>
      </dl>
    </section>
  );
}

function LiveFigures({ room, onBan }: { room: Room; onBan: (userId: string) => void }) {
  const [stats, setStats] = useState<RoomStats | null>(null);
  const [conns, setConns] = useState<{ list: RoomConnection[]; more: boolean } | null>(null);
  const [error, setError] = useState<unknown>(null);

  usePolling(
    async () => {
      try {
        const [s, c] = await Promise.all([
          callExtension('GetRoomStats', { identifier: room.arn }),
          callExtension('ListRoomConnections', { identifier: room.arn, maxResults: CONNECTIONS_SHOWN }),
        ]);
        setStats(s);
        setConns({ list: c.connections, more: Boolean(c.nextToken) });
        setError(null);
      } catch (err) {
        setError(err);
      }
    },
    ROOM_REFRESH_MS,
    [room.arn],
  );

  const errors = stats ? Object.entries(stats.errorsByCode).sort(([a], [b]) => a.localeCompare(b)) : [];
  const refused = error instanceof ApiError && error.code === 'AccessDeniedException';
  return (
    <>
      <section class="card room-figures" aria-labelledby="figures-title">
        <h2 id="figures-title">Live figures</h2>
        <ErrorBanner error={error} />
        {refused && <p class="muted">This key may not read live figures (ivschatd:GetRoomStats, ivschatd:ListRoomConnections).</p>}
        {!stats ? (
          !error && <Loading />
        ) : (
          <>
            <dl class="figures">
              <div class="figure">
                <dt>Connections</dt>
                <dd data-figure="connections">{stats.connections}</dd>
              </div>
              <div class="figure">
                <dt>Distinct users</dt>
                <dd data-figure="users">{stats.users}</dd>
              </div>
              <div class="figure">
                <dt>Messages/s</dt>
                <dd data-figure="messages">{formatRate(stats.messagesPerSecond)}</dd>
              </div>
              <div class="figure">
                <dt>Events/s</dt>
                <dd data-figure="events">{formatRate(stats.eventsPerSecond)}</dd>
              </div>
            </dl>
            <p class="figure-errors">
              <strong>Errors sent in the last {stats.errorsWindowSeconds} s:</strong>{' '}
              {errors.length === 0 ? (
                <span class="muted">none</span>
              ) : (
                errors.map(([code, n], i) => (
                  <span key={code}>
                    {i > 0 && ', '}
                    <span class="mono">{code}</span> × {n}
                  </span>
                ))
              )}
            </p>
            <p class="field-hint">
              Rates over the last {stats.rateWindowSeconds} s. Sampled {formatTime(stats.sampledAt)}
              {stats.nodes > 1 && ` from ${stats.nodes} nodes`}
              {stats.nodesMissing > 0 && `; ${stats.nodesMissing} node(s) did not answer`}. Refreshes every{' '}
              {ROOM_REFRESH_MS / 1000} s while this page is visible.
            </p>
          </>
        )}
      </section>
      <section class="room-connections" aria-labelledby="connections-title">
        <h2 id="connections-title">Connections</h2>
        {conns && (
          <Table
            caption={`Open connections (${conns.list.length}${conns.more ? '+' : ''})`}
            captionHidden
            rows={conns.list}
            rowKey={(c) => `${c.node}\u0000${c.userId}\u0000${c.connectedAt}`}
            empty="Nobody is connected."
            columns={[
              { header: 'User ID', render: (c) => <span class="mono">{c.userId}</span> },
              { header: 'Connected at', render: (c) => formatTime(c.connectedAt) },
              { header: 'Node', render: (c) => <span class="mono">{c.node}</span> },
              { header: 'Capabilities', render: (c) => (c.capabilities.length ? c.capabilities.join(', ') : <span class="muted">none</span>) },
              {
                header: 'Attributes',
                render: (c) => {
                  const a = Object.entries(c.attributes ?? {});
                  return a.length ? <span class="mono">{a.map(([k, v]) => `${k}=${v}`).join(', ')}</span> : '';
                },
              },
              {
                header: 'Actions',
                render: (c) => (
                  <button type="button" class="button-danger-plain" onClick={() => onBan(c.userId)} aria-label={`Ban ${c.userId}`}>
                    Ban
                  </button>
                ),
              },
            ]}
          />
        )}
        {conns?.more && <p class="field-hint">Showing the first {CONNECTIONS_SHOWN} connections.</p>}
      </section>
    </>
  );
}
