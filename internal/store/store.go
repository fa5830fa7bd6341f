// Package store defines how control-plane state is kept. The implementation
// is store/sqlstore, one database/sql code base for the embedded SQLite
// database (opened by store/sqlite) and for PostgreSQL, which serves clusters
// (store/postgres); on both it must pass the behaviour suite in store/storetest.
package store

import (
	"context"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// RoomFilter narrows ListRooms. Empty fields do not filter; set fields are
// AND-combined and compared exactly.
type RoomFilter struct {
	Name                    string
	MessageReviewHandlerURI string
	LoggingConfigurationID  string
}

// Page selects a window of a list ordered by UpdateTime descending, then ID
// ascending.
type Page struct {
	// After, when set, starts the page with the first item that sorts after it.
	After *chat.Cursor
	// Limit is the most items to return; callers ask for one more than they
	// show to learn whether another page exists.
	Limit int
}

// Store keeps rooms and logging configurations. Every method is durable when it
// returns nil. Errors meant for clients are *chat.Error values:
//   - a missing room or logging configuration: chat.NotFound (resourceId = the ID);
//   - a room that references a missing logging configuration: chat.NotFound for that configuration;
//   - a quota passed: chat.QuotaExceeded;
//   - more than chat.MaxTagsPerResource tags after a merge: chat.Validation on field "tags";
//   - deleting a logging configuration that rooms still reference: chat.Conflict.
//
// Values carry no ARNs (chat.Room and chat.LoggingConfiguration have none):
// ARNs are derived from the server's region and account by the caller.
type Store interface {
	// CreateRoom inserts room unless the store already holds maxRooms rooms.
	CreateRoom(ctx context.Context, room *chat.Room, maxRooms int) error
	GetRoom(ctx context.Context, id string) (*chat.Room, error)
	// UpdateRoom loads the room, lets update change it, and writes the result,
	// all in one transaction. update may return an error to abort. Tags and
	// CreateTime are not changed by this method.
	UpdateRoom(ctx context.Context, id string, update func(*chat.Room) error) (*chat.Room, error)
	DeleteRoom(ctx context.Context, id string) error
	ListRooms(ctx context.Context, filter RoomFilter, page Page) ([]*chat.Room, error)

	// CreateLoggingConfiguration inserts lc unless the store already holds max
	// logging configurations.
	CreateLoggingConfiguration(ctx context.Context, lc *chat.LoggingConfiguration, max int) error
	GetLoggingConfiguration(ctx context.Context, id string) (*chat.LoggingConfiguration, error)
	// UpdateLoggingConfiguration is UpdateRoom for logging configurations.
	UpdateLoggingConfiguration(ctx context.Context, id string, update func(*chat.LoggingConfiguration) error) (*chat.LoggingConfiguration, error)
	DeleteLoggingConfiguration(ctx context.Context, id string) error
	ListLoggingConfigurations(ctx context.Context, page Page) ([]*chat.LoggingConfiguration, error)

	// TagResource merges tags into the resource's tags (overwriting equal keys).
	TagResource(ctx context.Context, kind chat.Kind, id string, tags map[string]string) error
	// UntagResource removes the keys; absent keys are not an error.
	UntagResource(ctx context.Context, kind chat.Kind, id string, keys []string) error
	// Tags returns the resource's tags (never nil).
	Tags(ctx context.Context, kind chat.Kind, id string) (map[string]string, error)

	// BanUser stores a ban (the ivschatd BanUser extension): chat.NotFound
	// when the room does not exist. Banning a user already banned from the
	// room replaces the ban's Reason and ExpiresAt and keeps its CreatedAt.
	// It returns the ban as stored. The room's expired bans are deleted on
	// the way.
	BanUser(ctx context.Context, ban *chat.Ban) (*chat.Ban, error)
	// UnbanUser deletes the user's ban in the room; no ban is not an error.
	// The room's expired bans are deleted on the way.
	UnbanUser(ctx context.Context, roomID, userID string, now time.Time) error
	// ListBans returns the room's bans in force at now, ordered by user ID
	// (bytewise), starting with the first user ID greater than after, at most
	// limit of them (limit <= 0: all). A missing room has no bans.
	ListBans(ctx context.Context, roomID string, now time.Time, after string, limit int) ([]*chat.Ban, error)
	// GetRoomBan is GetRoom together with userID's ban in the room in force at
	// now (nil: not banned), read in one statement: the chat handshake's
	// lookup, so checking bans costs it no extra round trip.
	GetRoomBan(ctx context.Context, roomID, userID string, now time.Time) (*chat.Room, *chat.Ban, error)

	// Ping reports whether the store can serve requests now (readiness): it
	// reaches the database within ctx's deadline.
	Ping(ctx context.Context) error

	Close() error
}

// ErrUnavailable is wrapped into every error of a store call that failed
// because the database cannot serve now (unreachable, not answering within
// the store's operation timeout, shutting down), as opposed to a refusal of
// the request or a bug. It is a *chat.Error (ServiceUnavailableException, HTTP
// 503), so the API and the chat handshake answer 503 and clients retry;
// errors.Is(err, ErrUnavailable) tells it apart.
var ErrUnavailable = chat.Unavailable("the service is temporarily unavailable; retry the request")
