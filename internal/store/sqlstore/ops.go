package sqlstore

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
)

// roomSelect reads a room with its logging configuration IDs in one
// statement: the subquery walks the (room_id, position) primary key, so a list
// of N rooms costs one query, not N+1.
func (s *Store) roomSelect() string {
	return `SELECT ` + s.roomColumns() + ` FROM rooms r`
}

// roomColumns are the columns scanRoom reads, of a room row r.
func (s *Store) roomColumns() string {
	return `r.id, r.name, r.create_time, r.update_time, r.max_rate, r.max_length,
	r.has_review, r.review_uri, r.review_fallback, r.tags, ` + s.d.lcIDs
}

const lcSelect = `SELECT id, name, create_time, update_time, s3_bucket, log_group, delivery_stream, state, tags
	FROM logging_configurations`

// timeCol scans a time stored either way (SQLite: Unix nanoseconds;
// PostgreSQL: timestamptz) into a UTC time.Time, the contract's form.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case int64:
		*c.t = time.Unix(0, v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("unexpected time value of type %T", v)
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func scanRoom(sc scanner) (*chat.Room, error) {
	var (
		r             chat.Room
		hasReview     bool
		uri, fallback string
		tags, lcs     []byte
	)
	if err := sc.Scan(&r.ID, &r.Name, timeCol{&r.CreateTime}, timeCol{&r.UpdateTime}, &r.MaximumMessageRatePerSecond,
		&r.MaximumMessageLength, &hasReview, &uri, &fallback, &tags, &lcs); err != nil {
		return nil, err
	}
	if hasReview {
		r.MessageReviewHandler = &chat.MessageReviewHandler{URI: uri, FallbackResult: fallback}
	}
	var err error
	if r.Tags, err = decodeTags(tags); err != nil {
		return nil, fmt.Errorf("room %s: %w", r.ID, err)
	}
	if err := json.Unmarshal(lcs, &r.LoggingConfigurationIDs); err != nil {
		return nil, fmt.Errorf("room %s: decode logging configuration IDs: %w", r.ID, err)
	}
	return &r, nil
}

func scanLC(sc scanner) (*chat.LoggingConfiguration, error) {
	var (
		lc   chat.LoggingConfiguration
		tags []byte
	)
	if err := sc.Scan(&lc.ID, &lc.Name, timeCol{&lc.CreateTime}, timeCol{&lc.UpdateTime}, &lc.Destination.S3BucketName,
		&lc.Destination.CloudWatchLogGroupName, &lc.Destination.FirehoseDeliveryStreamName, &lc.State, &tags); err != nil {
		return nil, err
	}
	var err error
	if lc.Tags, err = decodeTags(tags); err != nil {
		return nil, fmt.Errorf("logging configuration %s: %w", lc.ID, err)
	}
	return &lc, nil
}

// checkQuota fails with QuotaExceeded when table already holds max rows.
// Counting inside the write transaction is race-free: SQLite's writers are
// serialized, and on PostgreSQL the quota lock serializes creates on every
// node from the count to the commit, so two cannot both see max-1.
func (s *Store) checkQuota(ctx context.Context, tx *sql.Tx, table string, kind chat.Kind, max int) error {
	if s.d.quotaLock != "" {
		if _, err := tx.ExecContext(ctx, s.d.sql(s.d.quotaLock), table); err != nil {
			return fmt.Errorf("quota lock: %w", err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		return fmt.Errorf("count %s: %w", table, err)
	}
	if n >= max {
		return chat.QuotaExceeded(kind, max)
	}
	return nil
}

// placeholders returns "?, ?, ..." for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// ---- rooms ----

// CreateRoom implements store.Store.
func (s *Store) CreateRoom(ctx context.Context, room *chat.Room, maxRooms int) error {
	tags, err := encodeTags(room.Tags)
	if err != nil {
		return err
	}
	return s.call(ctx, func(ctx context.Context) error {
		return s.withTx(ctx, func(tx *sql.Tx) error {
			if err := s.checkQuota(ctx, tx, "rooms", chat.KindRoom, maxRooms); err != nil {
				return err
			}
			if err := s.lockLCs(ctx, tx, room.LoggingConfigurationIDs); err != nil {
				return err
			}
			h := room.MessageReviewHandler
			var uri, fallback string
			if h != nil {
				uri, fallback = h.URI, h.FallbackResult
			}
			if _, err := tx.ExecContext(ctx, s.d.sql(`INSERT INTO rooms (id, name, create_time, update_time, max_rate, max_length,
				has_review, review_uri, review_fallback, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				room.ID, room.Name, s.d.timeArg(room.CreateTime), s.d.timeArg(room.UpdateTime), room.MaximumMessageRatePerSecond,
				room.MaximumMessageLength, h != nil, uri, fallback, string(tags)); err != nil {
				return fmt.Errorf("insert room %s: %w", room.ID, err)
			}
			return s.insertRoomLCs(ctx, tx, room.ID, room.LoggingConfigurationIDs)
		})
	})
}

// lockLCs returns NotFound for the first of ids (in the client's order) that
// does not exist: the foreign key would refuse it too, but not name it. On
// PostgreSQL the found rows are locked (FOR KEY SHARE) so that no node deletes
// them before this transaction commits.
func (s *Store) lockLCs(ctx context.Context, tx *sql.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := tx.QueryContext(ctx, s.d.sql(`SELECT id FROM logging_configurations WHERE id IN (`+placeholders(len(ids))+`)`+s.d.keyShare), args...)
	if err != nil {
		return fmt.Errorf("check logging configurations: %w", err)
	}
	defer rows.Close()
	have := make(map[string]bool, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("check logging configurations: %w", err)
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check logging configurations: %w", err)
	}
	if id, ok := firstMissing(ids, have); ok {
		return chat.NotFound(chat.KindLoggingConfiguration, id)
	}
	return nil
}

// insertRoomLCs stores the room's references in one statement.
func (s *Store) insertRoomLCs(ctx context.Context, tx *sql.Tx, roomID string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(ids))
	for i, id := range ids {
		args = append(args, roomID, i, id)
	}
	q := `INSERT INTO room_logging_configurations (room_id, position, lc_id) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(ids)), ", ")
	if _, err := tx.ExecContext(ctx, s.d.sql(q), args...); err != nil {
		if s.d.isFKViolation(err) {
			// Not reachable after lockLCs; kept so that a reference the
			// database refuses still maps to the documented error.
			return chat.NotFound(chat.KindLoggingConfiguration, ids[0])
		}
		return fmt.Errorf("attach logging configurations to room %s: %w", roomID, err)
	}
	return nil
}

// GetRoom implements store.Store.
func (s *Store) GetRoom(ctx context.Context, id string) (*chat.Room, error) {
	var r *chat.Room
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		r, err = scanRoom(s.getRoom.QueryRowContext(ctx, id))
		if errors.Is(err, sql.ErrNoRows) {
			return chat.NotFound(chat.KindRoom, id)
		}
		return wrap(err, "get room %s", id)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// UpdateRoom implements store.Store.
func (s *Store) UpdateRoom(ctx context.Context, id string, update func(*chat.Room) error) (*chat.Room, error) {
	var out *chat.Room
	err := s.call(ctx, func(ctx context.Context) error {
		return s.withTx(ctx, func(tx *sql.Tx) error {
			// The row lock serializes concurrent updates of the room across
			// nodes: the second waits and then sees the first one's result.
			lock := ""
			if s.d.rowLock != "" {
				lock = s.d.rowLock + " OF r"
			}
			cur, err := scanRoom(tx.QueryRowContext(ctx, s.d.sql(s.roomSelect()+` WHERE r.id = ?`+lock), id))
			if errors.Is(err, sql.ErrNoRows) {
				return chat.NotFound(chat.KindRoom, id)
			}
			if err != nil {
				return fmt.Errorf("load room %s: %w", id, err)
			}
			if err := update(cur); err != nil {
				return err
			}
			if err := s.lockLCs(ctx, tx, cur.LoggingConfigurationIDs); err != nil {
				return err
			}
			h := cur.MessageReviewHandler
			var uri, fallback string
			if h != nil {
				uri, fallback = h.URI, h.FallbackResult
			}
			if _, err := tx.ExecContext(ctx, s.d.sql(`UPDATE rooms SET name = ?, update_time = ?, max_rate = ?, max_length = ?,
				has_review = ?, review_uri = ?, review_fallback = ? WHERE id = ?`),
				cur.Name, s.d.timeArg(cur.UpdateTime), cur.MaximumMessageRatePerSecond, cur.MaximumMessageLength,
				h != nil, uri, fallback, id); err != nil {
				return fmt.Errorf("update room %s: %w", id, err)
			}
			if _, err := tx.ExecContext(ctx, s.d.sql(`DELETE FROM room_logging_configurations WHERE room_id = ?`), id); err != nil {
				return fmt.Errorf("detach logging configurations from room %s: %w", id, err)
			}
			if err := s.insertRoomLCs(ctx, tx, id, cur.LoggingConfigurationIDs); err != nil {
				return err
			}
			// Re-read rather than trust cur: the result is then exactly what
			// a later GetRoom returns (PostgreSQL rounds to microseconds), with
			// the stored tags and no aliasing of what the callback may have kept.
			out, err = scanRoom(tx.QueryRowContext(ctx, s.d.sql(s.roomSelect()+` WHERE r.id = ?`), id))
			if err != nil {
				return fmt.Errorf("reload room %s: %w", id, err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteRoom implements store.Store. The room's references go with it (ON
// DELETE CASCADE).
func (s *Store) DeleteRoom(ctx context.Context, id string) error {
	return s.call(ctx, func(ctx context.Context) error {
		res, err := s.w.ExecContext(ctx, s.d.sql(`DELETE FROM rooms WHERE id = ?`), id)
		if err != nil {
			return fmt.Errorf("delete room %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete room %s: %w", id, err)
		} else if n == 0 {
			return chat.NotFound(chat.KindRoom, id)
		}
		return nil
	})
}

// pageClause appends the cursor condition, order and limit of page to a
// query's conditions and arguments. A Limit of zero or less means no limit.
func (s *Store) pageClause(where []string, args []any, alias string, page store.Page) (string, []any) {
	if page.After != nil {
		ut := s.d.timeArg(page.After.UpdateTime)
		where = append(where, fmt.Sprintf("(%[1]supdate_time < ? OR (%[1]supdate_time = ? AND %[1]sid > ?))", alias))
		args = append(args, ut, ut, page.After.ID)
	}
	var b strings.Builder
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	fmt.Fprintf(&b, " ORDER BY %[1]supdate_time DESC, %[1]sid", alias)
	if page.Limit > 0 {
		b.WriteString(" LIMIT ?")
		args = append(args, page.Limit)
	}
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
	clause, args := s.pageClause(where, args, "r.", page)
	var out []*chat.Room
	err := s.call(ctx, func(ctx context.Context) error {
		return s.list(ctx, s.roomSelect()+clause, args, "list rooms", func(sc scanner) error {
			r, err := scanRoom(sc)
			out = append(out, r)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// list runs a read query and calls add for each row.
func (s *Store) list(ctx context.Context, query string, args []any, what string, add func(scanner) error) error {
	rows, err := s.r.QueryContext(ctx, s.d.sql(query), args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := add(rows); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// ---- logging configurations ----

// CreateLoggingConfiguration implements store.Store.
func (s *Store) CreateLoggingConfiguration(ctx context.Context, lc *chat.LoggingConfiguration, max int) error {
	tags, err := encodeTags(lc.Tags)
	if err != nil {
		return err
	}
	return s.call(ctx, func(ctx context.Context) error {
		return s.withTx(ctx, func(tx *sql.Tx) error {
			if err := s.checkQuota(ctx, tx, "logging_configurations", chat.KindLoggingConfiguration, max); err != nil {
				return err
			}
			d := lc.Destination
			if _, err := tx.ExecContext(ctx, s.d.sql(`INSERT INTO logging_configurations (id, name, create_time, update_time,
				s3_bucket, log_group, delivery_stream, state, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				lc.ID, lc.Name, s.d.timeArg(lc.CreateTime), s.d.timeArg(lc.UpdateTime), d.S3BucketName, d.CloudWatchLogGroupName,
				d.FirehoseDeliveryStreamName, lc.State, string(tags)); err != nil {
				return fmt.Errorf("insert logging configuration %s: %w", lc.ID, err)
			}
			return nil
		})
	})
}

// GetLoggingConfiguration implements store.Store.
func (s *Store) GetLoggingConfiguration(ctx context.Context, id string) (*chat.LoggingConfiguration, error) {
	var lc *chat.LoggingConfiguration
	err := s.call(ctx, func(ctx context.Context) error {
		var err error
		lc, err = scanLC(s.getLC.QueryRowContext(ctx, id))
		if errors.Is(err, sql.ErrNoRows) {
			return chat.NotFound(chat.KindLoggingConfiguration, id)
		}
		return wrap(err, "get logging configuration %s", id)
	})
	if err != nil {
		return nil, err
	}
	return lc, nil
}

// UpdateLoggingConfiguration implements store.Store.
func (s *Store) UpdateLoggingConfiguration(ctx context.Context, id string, update func(*chat.LoggingConfiguration) error) (*chat.LoggingConfiguration, error) {
	var out *chat.LoggingConfiguration
	err := s.call(ctx, func(ctx context.Context) error {
		return s.withTx(ctx, func(tx *sql.Tx) error {
			cur, err := scanLC(tx.QueryRowContext(ctx, s.d.sql(lcSelect+` WHERE id = ?`+s.d.rowLock), id))
			if errors.Is(err, sql.ErrNoRows) {
				return chat.NotFound(chat.KindLoggingConfiguration, id)
			}
			if err != nil {
				return fmt.Errorf("load logging configuration %s: %w", id, err)
			}
			if err := update(cur); err != nil {
				return err
			}
			d := cur.Destination
			if _, err := tx.ExecContext(ctx, s.d.sql(`UPDATE logging_configurations SET name = ?, update_time = ?, s3_bucket = ?,
				log_group = ?, delivery_stream = ?, state = ? WHERE id = ?`),
				cur.Name, s.d.timeArg(cur.UpdateTime), d.S3BucketName, d.CloudWatchLogGroupName, d.FirehoseDeliveryStreamName,
				cur.State, id); err != nil {
				return fmt.Errorf("update logging configuration %s: %w", id, err)
			}
			out, err = scanLC(tx.QueryRowContext(ctx, s.d.sql(lcSelect+` WHERE id = ?`), id))
			if err != nil {
				return fmt.Errorf("reload logging configuration %s: %w", id, err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteLoggingConfiguration implements store.Store. The RESTRICT foreign key
// decides whether rooms still use it, which also covers a room attaching it
// on another node at the same moment.
func (s *Store) DeleteLoggingConfiguration(ctx context.Context, id string) error {
	return s.call(ctx, func(ctx context.Context) error {
		res, err := s.w.ExecContext(ctx, s.d.sql(`DELETE FROM logging_configurations WHERE id = ?`), id)
		if err != nil {
			if s.d.isFKViolation(err) {
				return chat.Conflict(id, "logging configuration "+id+" is still used by at least one room")
			}
			return fmt.Errorf("delete logging configuration %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete logging configuration %s: %w", id, err)
		} else if n == 0 {
			return chat.NotFound(chat.KindLoggingConfiguration, id)
		}
		return nil
	})
}

// ListLoggingConfigurations implements store.Store.
func (s *Store) ListLoggingConfigurations(ctx context.Context, page store.Page) ([]*chat.LoggingConfiguration, error) {
	clause, args := s.pageClause(nil, nil, "", page)
	var out []*chat.LoggingConfiguration
	err := s.call(ctx, func(ctx context.Context) error {
		return s.list(ctx, lcSelect+clause, args, "list logging configurations", func(sc scanner) error {
			lc, err := scanLC(sc)
			out = append(out, lc)
			return err
		})
	})
	if err != nil {
		return nil, err
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
	return "", fmt.Errorf("unknown resource kind %q", kind)
}

// modifyTags runs change on the resource's tags with the row locked, so that
// concurrent merges on several nodes cannot lose each other's keys or pass the
// tag limit together.
func (s *Store) modifyTags(ctx context.Context, kind chat.Kind, id string, change func(map[string]string) (map[string]string, error)) error {
	table, err := tagTable(kind)
	if err != nil {
		return err
	}
	return s.call(ctx, func(ctx context.Context) error {
		return s.withTx(ctx, func(tx *sql.Tx) error {
			var raw []byte
			err := tx.QueryRowContext(ctx, s.d.sql(`SELECT tags FROM `+table+` WHERE id = ?`+s.d.rowLock), id).Scan(&raw)
			if errors.Is(err, sql.ErrNoRows) {
				return chat.NotFound(kind, id)
			}
			if err != nil {
				return fmt.Errorf("load tags of %s %s: %w", kind, id, err)
			}
			cur, err := decodeTags(raw)
			if err != nil {
				return fmt.Errorf("%s %s: %w", kind, id, err)
			}
			next, err := change(cur)
			if err != nil {
				return err
			}
			b, err := encodeTags(next)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.d.sql(`UPDATE `+table+` SET tags = ? WHERE id = ?`), string(b), id); err != nil {
				return fmt.Errorf("store tags of %s %s: %w", kind, id, err)
			}
			return nil
		})
	})
}

// TagResource implements store.Store.
func (s *Store) TagResource(ctx context.Context, kind chat.Kind, id string, tags map[string]string) error {
	return s.modifyTags(ctx, kind, id, func(cur map[string]string) (map[string]string, error) {
		return mergeTags(cur, tags)
	})
}

// UntagResource implements store.Store.
func (s *Store) UntagResource(ctx context.Context, kind chat.Kind, id string, keys []string) error {
	return s.modifyTags(ctx, kind, id, func(cur map[string]string) (map[string]string, error) {
		return removeTags(cur, keys), nil
	})
}

// Tags implements store.Store.
func (s *Store) Tags(ctx context.Context, kind chat.Kind, id string) (map[string]string, error) {
	table, err := tagTable(kind)
	if err != nil {
		return nil, err
	}
	var tags map[string]string
	err = s.call(ctx, func(ctx context.Context) error {
		var raw []byte
		err := s.r.QueryRowContext(ctx, s.d.sql(`SELECT tags FROM `+table+` WHERE id = ?`), id).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.NotFound(kind, id)
		}
		if err != nil {
			return fmt.Errorf("tags of %s %s: %w", kind, id, err)
		}
		if tags, err = decodeTags(raw); err != nil {
			return fmt.Errorf("%s %s: %w", kind, id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tags, nil
}
