package chat

import "time"

// Defaults and limits of the IVS Chat model (spec/ivschat-2020-07-14.json).
const (
	DefaultMaximumMessageRatePerSecond = 10
	DefaultMaximumMessageLength        = 500
	MaxLoggingConfigurationsPerRoom    = 3
	MaxTagsPerResource                 = 50
	// MaxAttributesBytes bounds token, event and message attribute maps: the
	// UTF-8 bytes of all keys and values together.
	MaxAttributesBytes = 1024

	DefaultSessionDurationMinutes = 60
	MinSessionDurationMinutes     = 1
	MaxSessionDurationMinutes     = 180
)

// Fallback results of a message review handler.
const (
	FallbackAllow = "ALLOW"
	FallbackDeny  = "DENY"
)

// Chat token capabilities. Receiving messages is always allowed.
const (
	CapabilitySendMessage    = "SEND_MESSAGE"
	CapabilityDisconnectUser = "DISCONNECT_USER"
	CapabilityDeleteMessage  = "DELETE_MESSAGE"
)

// Logging configuration states (enum LoggingConfigurationState).
const (
	StateCreating     = "CREATING"
	StateCreateFailed = "CREATE_FAILED"
	StateDeleting     = "DELETING"
	StateDeleteFailed = "DELETE_FAILED"
	StateUpdating     = "UPDATING"
	StateUpdateFailed = "UPDATE_FAILED"
	StateActive       = "ACTIVE"
)

// Now is the clock used for resource timestamps: UTC, truncated to microseconds
// so that every store (SQLite, PostgreSQL timestamptz) round-trips it exactly.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// MessageReviewHandler is the per-room hook that reviews every message.
// A nil *MessageReviewHandler (or an empty URI) means no review.
type MessageReviewHandler struct {
	URI            string
	FallbackResult string
}

// Room is a chat room as stored.
//
// It has no ARN: an ARN is the room's ID qualified by the region and account
// of the server that answers, which the store does not know. Whoever needs
// one derives it (chat.ARN) — the control plane from its configuration, the
// messaging gateway from the chat token it opened.
type Room struct {
	ID                          string
	Name                        string
	CreateTime                  time.Time
	UpdateTime                  time.Time
	MaximumMessageRatePerSecond int
	MaximumMessageLength        int
	MessageReviewHandler        *MessageReviewHandler
	Tags                        map[string]string
	// LoggingConfigurationIDs holds the IDs (not ARNs) of the attached logging
	// configurations, in the order the client gave them.
	LoggingConfigurationIDs []string
}

// Destination is the union DestinationConfiguration: exactly one field is set.
type Destination struct {
	S3BucketName               string
	CloudWatchLogGroupName     string
	FirehoseDeliveryStreamName string
}

// LoggingConfiguration is a chat-logging destination as stored.
type LoggingConfiguration struct {
	ID          string
	Name        string
	CreateTime  time.Time
	UpdateTime  time.Time
	Destination Destination
	State       string
	Tags        map[string]string
}

// Cursor is a position in a list ordered by UpdateTime descending, then ID
// ascending: the list continues with the items after (UpdateTime, ID).
type Cursor struct {
	UpdateTime time.Time
	ID         string
}

// AttributesBytes is the size that MaxAttributesBytes bounds: the UTF-8
// bytes of all keys and values of m.
func AttributesBytes(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

// Ban keeps a user out of a room (the ivschatd BanUser extension): the
// chat handshake refuses the user's connections to the room until ExpiresAt.
type Ban struct {
	RoomID string
	UserID string
	// Reason is the moderator's note ("" = none).
	Reason string
	// CreatedAt is when the user's current ban began; banning a banned user
	// again keeps it.
	CreatedAt time.Time
	// ExpiresAt is when the ban ends; zero means until the user is unbanned.
	ExpiresAt time.Time
}

// InForce reports whether the ban keeps the user out at now.
func (b *Ban) InForce(now time.Time) bool {
	return b.ExpiresAt.IsZero() || b.ExpiresAt.After(now)
}
