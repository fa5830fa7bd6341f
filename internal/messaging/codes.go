package messaging

// ERROR frame codes (spec §5). They travel as JSON numbers.
const (
	codeBadRequest      = 400 // malformed or invalid request, content too long
	codeUnauthorized    = 401 // session expired
	codeForbidden       = 403 // the token lacks the capability for the action
	codeNotFound        = 404 // the room was deleted
	codeNotAcceptable   = 406 // the review handler (or its fallback) denied the message
	codePayloadTooLarge = 413 // message attributes over the limit
	codeTooManyRequests = 429 // room, connection or moderation rate exceeded
	codeInternal        = 500 // the broker failed
)

// WebSocket close status codes the gateway sends (RFC 6455 §7.4.1) and why.
const (
	// closeNormal ends a session the official clients must not retry on their
	// own: session expiry (after ERROR 401, which makes the JS SDK reconnect
	// with a fresh token), DisconnectUser and room deletion.
	closeNormal uint16 = 1000
	// closeGoingAway is sent on graceful shutdown: clients reconnect elsewhere.
	closeGoingAway uint16 = 1001
	// closeProtocolError answers frames that break RFC 6455 (unmasked client
	// frames, reserved bits or opcodes, bad fragmentation).
	closeProtocolError uint16 = 1002
	// closePolicyViolation tells a slow consumer why it was dropped.
	closePolicyViolation uint16 = 1008
	// closeTooBig answers a client message over Options.MaxFrameSize.
	closeTooBig uint16 = 1009
)

// Close reasons (at most 123 bytes).
const (
	reasonSessionExpired = "session expired"
	reasonRoomDeleted    = "room deleted"
	reasonShutdown       = "server shutting down"
	reasonDisconnected   = "disconnected by moderator"
	reasonSlowConsumer   = "slow consumer: outbound queue limit exceeded"
)
