package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/store"
	"github.com/ivschatd/ivschatd/internal/store/internal/storeutil"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// roomSelect reads a room with its logging configuration IDs in one statement:
// the correlated subquery walks the (room_id, position) primary key, so a list
// of N rooms costs one query, not N+1.
const roomSelect = `SELECT r.id, r.name, r.create_time, r.update_time, r.max_rate, r.max_length,
	r.has_review, r.review_uri, r.review_fallback, r.tags,
	(SELECT json_group_array(x.lc_id ORDER BY x.position) FROM room_logging_configurations x WHERE x.room_id = r.id)
	FROM rooms r`

const lcSelect = `SELECT id, name, create_time, update_time, s3_bucket, log_group, delivery_stream, state, tags
	FROM logging_configurations`

func toNanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

type scanner interface{ Scan(dest ...any) error }

func scanRoom(sc scanner) (*chat.Room, error) {
	var (
		r             chat.Room
		ct, ut        int64
		hasReview     bool
		uri, fallback string
		tags, lcs     string
	)
	if err := sc.Scan(&r.ID, &r.Name, &ct, &ut, &r.MaximumMessageRatePerSecond, &r.MaximumMessageLength,
		&hasReview, &uri, &fallback, &tags, &lcs); err != nil {
		return nil, err
	}
	r.CreateTime, r.UpdateTime = fromNanos(ct), fromNanos(ut)
	if hasReview {
		r.MessageReviewHandler = &chat.MessageReviewHandler{URI: uri, FallbackResult: fallback}
	}
	var err error
	if r.Tags, err = storeutil.DecodeTags([]byte(tags)); err != nil {
		return nil, fmt.Errorf("room %s: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(lcs), &r.LoggingConfigurationIDs); err != nil {
		return nil, fmt.Errorf("room %s: decode logging configuration IDs: %w", r.ID, err)
	}
	return &r, nil
}

func scanLC(sc scanner) (*chat.LoggingConfiguration, error) {
	var (
		lc     chat.LoggingConfiguration
		ct, ut int64
		tags   string
	)
	if err := sc.Scan(&lc.ID, &lc.Name, &ct, &ut, &lc.Destination.S3BucketName, &lc.Destination.CloudWatchLogGroupName,
		&lc.Destination.FirehoseDeliveryStreamName, &lc.State, &tags); err != nil {
		return nil, err
	}
	lc.CreateTime, lc.UpdateTime = fromNanos(ct), fromNanos(ut)
	var err error
	if lc.Tags, err = storeutil.DecodeTags([]byte(tags)); err != nil {
		return nil, fmt.Errorf("logging configuration %s: %w", lc.ID, err)
	}
	return &lc, nil
}

// withTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits if fn
// returns nil. fn's error is returned unwrapped so that callers' *chat.Error
// values and update callbacks' errors reach the API layer as they are.
func (s *Store) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// isFKViolation reports a foreign key refusal. SQLite reports an insert of a
// dangling reference as SQLITE_CONSTRAINT_FOREIGNKEY but a RESTRICT action as
// SQLITE_CONSTRAINT_TRIGGER (actions are implemented as triggers); this
// schema has no other triggers, so both mean the foreign key.
func isFKViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_TRIGGER
}

// ---- rooms ----

// CreateRoom implements store.Store.
func (s *Store) CreateRoom(ctx context.Context, room *chat.Room, maxRooms int) error {
	tags, err := storeutil.EncodeTags(room.Tags)
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(tx *sql.Tx) error {
		// Counting inside the write transaction is race-free: writers are
		// serialized, so no other create can slip in before the insert.
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM rooms`).Scan(&n); err != nil {
			return fmt.Errorf("sqlite: count rooms: %w", err)
		}
		if n >= maxRooms {
			return chat.QuotaExceeded(chat.KindRoom, maxRooms)
		}
		if err := checkLCsExist(ctx, tx, room.LoggingConfigurationIDs); err != nil {
			return err
		}
		h := room.MessageReviewHandler
		var uri, fallback string
		if h != nil {
			uri, fallback = h.URI, h.FallbackResult
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO rooms (id, name, create_time, update_time, max_rate, max_length,
			has_review, review_uri, review_fallback, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			room.ID, room.Name, toNanos(room.CreateTime), toNanos(room.UpdateTime), room.MaximumMessageRatePerSecond,
			room.MaximumMessageLength, h != nil, uri, fallback, string(tags)); err != nil {
			return fmt.Errorf("sqlite: insert room %s: %w", room.ID, err)
		}
		return insertRoomLCs(ctx, tx, room.ID, room.LoggingConfigurationIDs)
	})
}

// checkLCsExist returns NotFound for the first of ids (in the client's order)
// that is not stored. The foreign key would refuse it too, but SQLite's error
// does not say which ID failed.
func checkLCsExist(ctx context.Context, tx *sql.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	q := `SELECT id FROM logging_configurations WHERE id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("sqlite: check logging configurations: %w", err)
	}
	defer rows.Close()
	have := make(map[string]bool, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("sqlite: check logging configurations: %w", err)
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: check logging configurations: %w", err)
	}
	if id, ok := storeutil.FirstMissing(ids, have); ok {
		return chat.NotFound(chat.KindLoggingConfiguration, id)
	}
	return nil
}

func insertRoomLCs(ctx context.Context, tx *sql.Tx, roomID string, ids []string) error {
	for i, id := range ids {
		if _, err := tx.ExecContext(ctx, `INSERT INTO room_logging_configurations (room_id, position, lc_id) VALUES (?, ?, ?)`,
			roomID, i, id); err != nil {
			if isFKViolation(err) {
				return chat.NotFound(chat.KindLoggingConfiguration, id)
			}
			return fmt.Errorf("sqlite: attach logging configuration %s to room %s: %w", id, roomID, err)
		}
	}
	return nil
}

// GetRoom implements store.Store.
func (s *Store) GetRoom(ctx context.Context, id string) (*chat.Room, error) {
	r, err := scanRoom(s.getRoomStmt.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, chat.NotFound(chat.KindRoom, id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get room %s: %w", id, err)
	}
	return r, nil
}

// UpdateRoom implements store.Store.
func (s *Store) UpdateRoom(ctx context.Context, id string, update func(*chat.Room) error) (*chat.Room, error) {
	var out *chat.Room
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanRoom(tx.QueryRowContext(ctx, roomSelect+" WHERE r.id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return chat.NotFound(chat.KindRoom, id)
		}
		if err != nil {
			return fmt.Errorf("sqlite: load room %s: %w", id, err)
		}
		if err := update(cur); err != nil {
			return err
		}
		if err := checkLCsExist(ctx, tx, cur.LoggingConfigurationIDs); err != nil {
			return err
		}
		h := cur.MessageReviewHandler
		var uri, fallback string
		if h != nil {
			uri, fallback = h.URI, h.FallbackResult
		}
		if _, err := tx.ExecContext(ctx, `UPDATE rooms SET name = ?, update_time = ?, max_rate = ?, max_length = ?,
			has_review = ?, review_uri = ?, review_fallback = ? WHERE id = ?`,
			cur.Name, toNanos(cur.UpdateTime), cur.MaximumMessageRatePerSecond, cur.MaximumMessageLength,
			h != nil, uri, fallback, id); err != nil {
			return fmt.Errorf("sqlite: update room %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM room_logging_configurations WHERE room_id = ?`, id); err != nil {
			return fmt.Errorf("sqlite: detach logging configurations from room %s: %w", id, err)
		}
		if err := insertRoomLCs(ctx, tx, id, cur.LoggingConfigurationIDs); err != nil {
			return err
		}
		// Re-read rather than trust cur: the result is then exactly what a
		// later GetRoom returns, with the stored tags and no aliasing of
		// maps or slices the callback may have kept.
		out, err = scanRoom(tx.QueryRowContext(ctx, roomSelect+" WHERE r.id = ?", id))
		if err != nil {
			return fmt.Errorf("sqlite: reload room %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteRoom implements store.Store. The room's references go with it (ON
// DELETE CASCADE).
func (s *Store) DeleteRoom(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM rooms WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete room %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: delete room %s: %w", id, err)
	} else if n == 0 {
		return chat.NotFound(chat.KindRoom, id)
	}
	return nil
}

// pageClause appends the cursor condition and the limit of page. A Limit of
// zero or less means no limit.
func pageClause(where []string, args []any, alias string, page store.Page) (string, []any) {
	if page.After != nil {
		ut := toNanos(page.After.UpdateTime)
		where = append(where, fmt.Sprintf("(%[1]supdate_time < ? OR (%[1]supdate_time = ? AND %[1]sid > ?))", alias))
		args = append(args, ut, ut, page.After.ID)
	}
	var b strings.Builder
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	fmt.Fprintf(&b, " ORDER BY %[1]supdate_time DESC, %[1]sid LIMIT ?", alias)
	limit := page.Limit
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	args = append(args, limit)
	return b.String(), args
}

// ListRooms implements store.Store.
func (s *Store) ListRooms(ctx context.Context, filter store.RoomFilter, page store.Page) ([]*chat.Room, error) {
	var (
		where []string
		args  []any
	)
	if filter.Name != "" {
		where = append(where, "r.name = ?")
		args = append(args, filter.Name)
	}
	if filter.MessageReviewHandlerURI != "" {
		where = append(where, "r.has_review AND r.review_uri = ?")
		args = append(args, filter.MessageReviewHandlerURI)
	}
	if filter.LoggingConfigurationID != "" {
		where = append(where, "EXISTS (SELECT 1 FROM room_logging_configurations f WHERE f.room_id = r.id AND f.lc_id = ?)")
		args = append(args, filter.LoggingConfigurationID)
	}
	clause, args := pageClause(where, args, "r.", page)
	rows, err := s.r.QueryContext(ctx, roomSelect+clause, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list rooms: %w", err)
	}
	defer rows.Close()
	var out []*chat.Room
	for rows.Next() {
		r, err := scanRoom(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list rooms: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list rooms: %w", err)
	}
	return out, nil
}

// ---- logging configurations ----

// CreateLoggingConfiguration implements store.Store.
func (s *Store) CreateLoggingConfiguration(ctx context.Context, lc *chat.LoggingConfiguration, max int) error {
	tags, err := storeutil.EncodeTags(lc.Tags)
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM logging_configurations`).Scan(&n); err != nil {
			return fmt.Errorf("sqlite: count logging configurations: %w", err)
		}
		if n >= max {
			return chat.QuotaExceeded(chat.KindLoggingConfiguration, max)
		}
		d := lc.Destination
		if _, err := tx.ExecContext(ctx, `INSERT INTO logging_configurations (id, name, create_time, update_time,
			s3_bucket, log_group, delivery_stream, state, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			lc.ID, lc.Name, toNanos(lc.CreateTime), toNanos(lc.UpdateTime), d.S3BucketName, d.CloudWatchLogGroupName,
			d.FirehoseDeliveryStreamName, lc.State, string(tags)); err != nil {
			return fmt.Errorf("sqlite: insert logging configuration %s: %w", lc.ID, err)
		}
		return nil
	})
}

// GetLoggingConfiguration implements store.Store.
func (s *Store) GetLoggingConfiguration(ctx context.Context, id string) (*chat.LoggingConfiguration, error) {
	lc, err := scanLC(s.getLCStmt.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, chat.NotFound(chat.KindLoggingConfiguration, id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get logging configuration %s: %w", id, err)
	}
	return lc, nil
}

// UpdateLoggingConfiguration implements store.Store.
func (s *Store) UpdateLoggingConfiguration(ctx context.Context, id string, update func(*chat.LoggingConfiguration) error) (*chat.LoggingConfiguration, error) {
	var out *chat.LoggingConfiguration
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanLC(tx.QueryRowContext(ctx, lcSelect+" WHERE id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return chat.NotFound(chat.KindLoggingConfiguration, id)
		}
		if err != nil {
			return fmt.Errorf("sqlite: load logging configuration %s: %w", id, err)
		}
		tags, createTime := cur.Tags, cur.CreateTime
		if err := update(cur); err != nil {
			return err
		}
		d := cur.Destination
		if _, err := tx.ExecContext(ctx, `UPDATE logging_configurations SET name = ?, update_time = ?, s3_bucket = ?,
			log_group = ?, delivery_stream = ?, state = ? WHERE id = ?`,
			cur.Name, toNanos(cur.UpdateTime), d.S3BucketName, d.CloudWatchLogGroupName, d.FirehoseDeliveryStreamName,
			cur.State, id); err != nil {
			return fmt.Errorf("sqlite: update logging configuration %s: %w", id, err)
		}
		// The callback's copy is ours (scanLC built it), so only the fields
		// UpdateLoggingConfiguration does not change need restoring.
		cur.ID, cur.CreateTime, cur.Tags = id, createTime, tags
		out = cur
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteLoggingConfiguration implements store.Store.
func (s *Store) DeleteLoggingConfiguration(ctx context.Context, id string) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		// Checking first gives the documented errors without parsing SQLite's;
		// in the write transaction no room can attach it in between. The
		// RESTRICT foreign key remains the backstop.
		var exists, used bool
		if err := tx.QueryRowContext(ctx, `SELECT
			EXISTS (SELECT 1 FROM logging_configurations WHERE id = ?),
			EXISTS (SELECT 1 FROM room_logging_configurations WHERE lc_id = ?)`, id, id).Scan(&exists, &used); err != nil {
			return fmt.Errorf("sqlite: delete logging configuration %s: %w", id, err)
		}
		if !exists {
			return chat.NotFound(chat.KindLoggingConfiguration, id)
		}
		if used {
			return lcInUse(id)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM logging_configurations WHERE id = ?`, id); err != nil {
			if isFKViolation(err) {
				return lcInUse(id)
			}
			return fmt.Errorf("sqlite: delete logging configuration %s: %w", id, err)
		}
		return nil
	})
}

func lcInUse(id string) error {
	return chat.Conflict(id, "logging configuration "+id+" is still used by at least one room")
}

// ListLoggingConfigurations implements store.Store.
func (s *Store) ListLoggingConfigurations(ctx context.Context, page store.Page) ([]*chat.LoggingConfiguration, error) {
	clause, args := pageClause(nil, nil, "", page)
	rows, err := s.r.QueryContext(ctx, lcSelect+clause, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list logging configurations: %w", err)
	}
	defer rows.Close()
	var out []*chat.LoggingConfiguration
	for rows.Next() {
		lc, err := scanLC(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list logging configurations: %w", err)
		}
		out = append(out, lc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list logging configurations: %w", err)
	}
	return out, nil
}

// ---- tags ----

// tagTable maps a kind to its table. The name is spliced into SQL, so it
// must only ever come from this switch.
func tagTable(kind chat.Kind) (string, error) {
	switch kind {
	case chat.KindRoom:
		return "rooms", nil
	case chat.KindLoggingConfiguration:
		return "logging_configurations", nil
	}
	return "", fmt.Errorf("sqlite: unknown resource kind %q", kind)
}

// modifyTags runs change on the resource's tags in a write transaction and
// stores the result.
func (s *Store) modifyTags(ctx context.Context, kind chat.Kind, id string, change func(map[string]string) (map[string]string, error)) error {
	table, err := tagTable(kind)
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(tx *sql.Tx) error {
		var raw string
		err := tx.QueryRowContext(ctx, `SELECT tags FROM `+table+` WHERE id = ?`, id).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.NotFound(kind, id)
		}
		if err != nil {
			return fmt.Errorf("sqlite: load tags of %s %s: %w", kind, id, err)
		}
		cur, err := storeutil.DecodeTags([]byte(raw))
		if err != nil {
			return fmt.Errorf("sqlite: %s %s: %w", kind, id, err)
		}
		next, err := change(cur)
		if err != nil {
			return err
		}
		b, err := storeutil.EncodeTags(next)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET tags = ? WHERE id = ?`, string(b), id); err != nil {
			return fmt.Errorf("sqlite: store tags of %s %s: %w", kind, id, err)
		}
		return nil
	})
}

// TagResource implements store.Store.
func (s *Store) TagResource(ctx context.Context, kind chat.Kind, id string, tags map[string]string) error {
	return s.modifyTags(ctx, kind, id, func(cur map[string]string) (map[string]string, error) {
		return storeutil.MergeTags(cur, tags)
	})
}

// UntagResource implements store.Store.
func (s *Store) UntagResource(ctx context.Context, kind chat.Kind, id string, keys []string) error {
	return s.modifyTags(ctx, kind, id, func(cur map[string]string) (map[string]string, error) {
		return storeutil.RemoveTags(cur, keys), nil
	})
}

// Tags implements store.Store.
func (s *Store) Tags(ctx context.Context, kind chat.Kind, id string) (map[string]string, error) {
	table, err := tagTable(kind)
	if err != nil {
		return nil, err
	}
	var raw string
	err = s.r.QueryRowContext(ctx, `SELECT tags FROM `+table+` WHERE id = ?`, id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, chat.NotFound(kind, id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: tags of %s %s: %w", kind, id, err)
	}
	tags, err := storeutil.DecodeTags([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s %s: %w", kind, id, err)
	}
	return tags, nil
}
