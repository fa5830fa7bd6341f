// Package messaging is the WebSocket gateway of ivschatd: the chat endpoint
// that the official amazon-ivs-chat-messaging clients and raw WebSocket users
// connect to with a chat token (spec/messaging.md).
//
// # Handshake
//
// The token is read from Sec-WebSocket-Protocol and echoed in the 101
// response. A handshake is refused with a plain HTTP response before the
// upgrade; official clients treat every refusal as a socket error and retry
// with a new token, so the status only matters for diagnostics:
//
//	426 Upgrade Required      not a WebSocket upgrade request
//	401 Unauthorized          missing, malformed, forged or expired token, or a token already used
//	403 Forbidden             the token's user is banned from the room (Options.Bans; the token stays unused)
//	404 Not Found             the token's room does not exist (deleted, also while the handshake ran)
//	429 Too Many Requests     Options.MaxConnections connections are open (on
//	                          every node sharing Options.Quota, in cluster mode)
//	503 Service Unavailable   the gateway is shutting down, or the store cannot be reached to read the room (and ban)
//	500 Internal Server Error the room source, the token ledger or the broker failed
//
// Since a client only sees "socket error", every refusal is counted by reason
// (Stats.RejectedByReason) and logged with it: at Info the first time in a
// minute for each reason, at Debug after that (reject.go).
//
// # Requests and limits
//
// Client frames are decoded with case-insensitive keys; unknown keys are
// ignored. Every request is answered either by the broadcast it causes (the
// sender receives its own MESSAGE or EVENT) or by an ERROR frame to the sender
// only; the connection stays open. Checks run in this order: decoding (400),
// the per-connection request rate (429), capability (403), validation (400,
// 413), room or moderation rate (429).
//
//   - Content is counted in Unicode code points; a length up to and including
//     the room's maximumMessageLength is accepted, a longer one gets ERROR 400
//     (the code the service's published sample uses for over-long content).
//   - Message attributes: the UTF-8 bytes of all keys and values together are
//     limited to Options.MaxAttributesBytes (1 KB, like token and event
//     attributes); more gets ERROR 413.
//   - SEND_MESSAGE is limited room-wide, across all senders on this node, to
//     the room's maximumMessageRatePerSecond (429). UpdateRoom limits
//     (RoomUpdated) apply to the next request of every connected client.
//   - Every connection may make Options.RequestRatePerSecond requests per
//     second (429), and DELETE_MESSAGE/DISCONNECT_USER from clients share a
//     gateway-wide Options.ModerationRatePerSecond (429), the account quota of
//     the real service.
//   - A client message over Options.MaxFrameSize bytes closes the connection
//     with 1009: no official client comes near it, and reading on would
//     mean buffering an unbounded payload.
//
// # Message review
//
// With Options.Reviewer set, a SEND_MESSAGE to a room whose
// messageReviewHandler has a URI is reviewed after all the checks above and
// before delivery (spec §7): the handler sees the Id the message will have;
// DENY (its own or the fallback's) sends ERROR 406 with that Id to the sender
// only, ALLOW broadcasts the handler's Content and Attributes. The review runs
// on the connection's reader goroutine, so one connection's messages are
// decided and published in the order sent, while other connections and rooms
// are reviewed concurrently. UpdateRoom changes of the handler (RoomUpdated)
// apply to the next message, on every node: the broker's room update carries
// the limits and the handler as of the room's UpdateTime, and each room keeps
// the newest configuration it has seen, whatever order views of it arrive in
// (a handshake that read the room before the update, a delayed message).
// Review requests carry the room's ARN as the chat token names it.
//
// # Lifecycle
//
// At the token's session expiry the client receives ERROR 401 and then a
// close with 1000 (the JS SDK reconnects on the 401). DisconnectUser
// broadcasts aws:DISCONNECT_USER and then closes the user's connections with
// 1000; a deleted room sends ERROR 404 and closes with 1000; Shutdown closes
// with 1001. Once the server has decided to close a connection, it acts on
// nothing more the client sends (only its close frame is awaited). Pings go
// out every Options.PingInterval; a connection that sends nothing (not even
// a pong) for Options.IdleTimeout is dropped.
//
// A connection is a slow consumer, closed with 1008, when more than
// Options.MaxPendingBytes of the bytes offered to it at least a grace ago (a
// tenth of Options.WriteTimeout: 1 s by default) are still not taken, when a
// write to it blocks past Options.WriteTimeout, or when more than
// Options.QueueLimit frames for it alone wait. Broadcasts not yet offered, or
// offered less than the grace ago, never count against it: a client that
// stalls for a moment while a burst is offered to it keeps its connection,
// one that stays behind for the grace does not (slowgrace.go). A client
// whose socket is full cannot receive the close frame: its blocked write is
// cut short and the socket closed.
//
// # Chat logging
//
// With Options.Recorder set, every MESSAGE and EVENT is recorded before it is
// broadcast. A message or custom event that cannot be recorded is refused
// (ERROR 500 to the sender; the control plane answers 500) and counted in
// Stats.RecordFailures; moderation events go out unrecorded (and counted),
// so that removing abuse never depends on the log's disk.
//
// # Recent messages (extension)
//
// A room whose ivschatd:history tag (or Options.HistoryDefault) is N > 0
// gives each new connection its last N MESSAGE frames, byte for byte and in
// order, before any live frame, without messages removed by DELETE_MESSAGE;
// replay and live stream meet without gap or duplicate. On a single node the
// history is in memory (kept an hour after the room's last connection on the
// node left; a restart keeps nothing); in a cluster it is a Redis list
// written in the same script as the PUBLISH. See history.go for the
// argument.
//
// # Fan-out
//
// See room.go and conn.go: a broadcast is encoded once into a complete
// WebSocket frame and appended to the room's ring; a flush (never two at
// once per room, paced by what the room's flushes cost and at most one per
// Options.WriteCoalesce: flushpace.go) walks the room's
// connections with one worker per CPU and writes each one's pending frames
// with one non-blocking writev; a connection whose socket is full finishes
// in its own writer goroutine. Lock order is written down in gateway.go.
package messaging
