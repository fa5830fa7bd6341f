package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/store"
	"github.com/ivschatd/ivschatd/internal/store/internal/storeutil"
)

// roomSelect reads a room with its logging configuration IDs in one statement:
// the ARRAY subquery walks the (room_id, position) primary key, so a list of N
// rooms costs one query, not N+1.
const roomSelect = `SELECT r.id, r.name, r.create_time, r.update_time, r.max_rate, r.max_length,
	r.has_review, r.review_uri, r.review_fallback, r.tags,
	ARRAY(SELECT x.lc_id FROM room_logging_configurations x WHERE x.room_id = r.id ORDER BY x.position)
	FROM rooms r`

const lcSelect = `SELECT id, name, create_time, update_time, s3_bucket, log_group, delivery_stream, state, tags
	FROM logging_configurations`

// PostgreSQL error codes translated into the store contract.
const (
	pgForeignKeyViolation = "23503"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func scanRoom(row pgx.Row) (*chat.Room, error) {
	var (
		r             chat.Room
		hasReview     bool
		uri, fallback string
		tags          []byte
	)
	if err := row.Scan(&r.ID, &r.Name, &r.CreateTime, &r.UpdateTime, &r.MaximumMessageRatePerSecond, &r.MaximumMessageLength,
		&hasReview, &uri, &fallback, &tags, &r.LoggingConfigurationIDs); err != nil {
		return nil, err
	}
	// pgx returns timestamptz in the local zone; the contract is UTC.
	r.CreateTime, r.UpdateTime = r.CreateTime.UTC(), r.UpdateTime.UTC()
	if hasReview {
		r.MessageReviewHandler = &chat.MessageReviewHandler{URI: uri, FallbackResult: fallback}
	}
	var err error
	if r.Tags, err = storeutil.DecodeTags(tags); err != nil {
		return nil, fmt.Errorf("room %s: %w", r.ID, err)
	}
	return &r, nil
}

func scanLC(row pgx.Row) (*chat.LoggingConfiguration, error) {
	var (
		lc   chat.LoggingConfiguration
		tags []byte
	)
	if err := row.Scan(&lc.ID, &lc.Name, &lc.CreateTime, &lc.UpdateTime, &lc.Destination.S3BucketName,
		&lc.Destination.CloudWatchLogGroupName, &lc.Destination.FirehoseDeliveryStreamName, &lc.State, &tags); err != nil {
		return nil, err
	}
	lc.CreateTime, lc.UpdateTime = lc.CreateTime.UTC(), lc.UpdateTime.UTC()
	var err error
	if lc.Tags, err = storeutil.DecodeTags(tags); err != nil {
		return nil, fmt.Errorf("logging configuration %s: %w", lc.ID, err)
	}
	return &lc, nil
}

// withTx runs fn in a transaction and commits if fn returns nil. fn's error is
// returned unwrapped so that *chat.Error values and update callbacks' errors
// reach the caller as they are.
func (s *Store) withTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback(ctx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// checkQuota fails with QuotaExceeded when table already holds max rows. It
// first takes a transaction-level advisory lock for the table's quota, so
// creates on every node are serialized from the count to the commit and two
// of them cannot both see max-1. The key includes the schema so that separate
// deployments sharing a database do not wait for each other.
func checkQuota(ctx context.Context, tx pgx.Tx, table string, kind chat.Kind, max int) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '.ivschatd-quota.' || $1, 0))`, table); err != nil {
		return fmt.Errorf("postgres: quota lock: %w", err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		return fmt.Errorf("postgres: count %s: %w", table, err)
	}
	if n >= max {
		return chat.QuotaExceeded(kind, max)
	}
	return nil
}

// ---- rooms ----

// CreateRoom implements store.Store.
func (s *Store) CreateRoom(ctx context.Context, room *chat.Room, maxRooms int) error {
	tags, err := storeutil.EncodeTags(room.Tags)
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(tx pgx.Tx) error {
		if err := checkQuota(ctx, tx, "rooms", chat.KindRoom, maxRooms); err != nil {
			return err
		}
		if err := lockLCs(ctx, tx, room.LoggingConfigurationIDs); err != nil {
			return err
		}
		h := room.MessageReviewHandler
		var uri, fallback string
		if h != nil {
			uri, fallback = h.URI, h.FallbackResult
		}
		if _, err := tx.Exec(ctx, `INSERT INTO rooms (id, name, create_time, update_time, max_rate, max_length,
			has_review, review_uri, review_fallback, tags) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			room.ID, room.Name, room.CreateTime, room.UpdateTime, room.MaximumMessageRatePerSecond,
			room.MaximumMessageLength, h != nil, uri, fallback, string(tags)); err != nil {
			return fmt.Errorf("postgres: insert room %s: %w", room.ID, err)
		}
		return insertRoomLCs(ctx, tx, room.ID, room.LoggingConfigurationIDs)
	})
}

// lockLCs returns NotFound for the first of ids (in the client's order) that
// does not exist. FOR KEY SHARE keeps the found ones from being deleted by
// another node before this transaction commits, so the foreign key insert
// that follows cannot fail on them.
func lockLCs(ctx context.Context, tx pgx.Tx, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT id FROM logging_configurations WHERE id = ANY($1) FOR KEY SHARE`, ids)
	if err != nil {
		return fmt.Errorf("postgres: check logging configurations: %w", err)
	}
	have := make(map[string]bool, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("postgres: check logging configurations: %w", err)
		}
		have[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: check logging configurations: %w", err)
	}
	if id, ok := storeutil.FirstMissing(ids, have); ok {
		return chat.NotFound(chat.KindLoggingConfiguration, id)
	}
	return nil
}

func insertRoomLCs(ctx context.Context, tx pgx.Tx, roomID string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	positions := make([]int32, len(ids))
	for i := range ids {
		positions[i] = int32(i)
	}
	// One statement for all references rather than one per reference.
	if _, err := tx.Exec(ctx, `INSERT INTO room_logging_configurations (room_id, position, lc_id)
		SELECT $1, p, l FROM unnest($2::integer[], $3::text[]) AS u(p, l)`, roomID, positions, ids); err != nil {
		if pgCode(err) == pgForeignKeyViolation {
			// Not reachable after lockLCs; kept so that a reference the
			// database refuses still maps to the documented error.
			var pe *pgconn.PgError
			errors.As(err, &pe)
			return chat.NotFound(chat.KindLoggingConfiguration, missingFromDetail(pe.Detail, ids))
		}
		return fmt.Errorf("postgres: attach logging configurations to room %s: %w", roomID, err)
	}
	return nil
}

// missingFromDetail picks the ID a foreign key error names ("Key (lc_id)=(X)
// is not present ..."), falling back to the first ID.
func missingFromDetail(detail string, ids []string) string {
	for _, id := range ids {
		if strings.Contains(detail, "=("+id+")") {
			return id
		}
	}
	return ids[0]
}

// GetRoom implements store.Store.
func (s *Store) GetRoom(ctx context.Context, id string) (*chat.Room, error) {
	r, err := scanRoom(s.pool.QueryRow(ctx, roomSelect+` WHERE r.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, chat.NotFound(chat.KindRoom, id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get room %s: %w", id, err)
	}
	return r, nil
}

// UpdateRoom implements store.Store.
func (s *Store) UpdateRoom(ctx context.Context, id string, update func(*chat.Room) error) (*chat.Room, error) {
	var out *chat.Room
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		// FOR UPDATE serializes concurrent updates of the room across nodes:
		// the second waits and then sees the first one's result.
		cur, err := scanRoom(tx.QueryRow(ctx, roomSelect+` WHERE r.id = $1 FOR UPDATE OF r`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return chat.NotFound(chat.KindRoom, id)
		}
		if err != nil {
			return fmt.Errorf("postgres: load room %s: %w", id, err)
		}
		if err := update(cur); err != nil {
			return err
		}
		if err := lockLCs(ctx, tx, cur.LoggingConfigurationIDs); err != nil {
			return err
		}
		h := cur.MessageReviewHandler
		var uri, fallback string
		if h != nil {
			uri, fallback = h.URI, h.FallbackResult
		}
		if _, err := tx.Exec(ctx, `UPDATE rooms SET name = $2, update_time = $3, max_rate = $4, max_length = $5,
			has_review = $6, review_uri = $7, review_fallback = $8 WHERE id = $1`,
			id, cur.Name, cur.UpdateTime, cur.MaximumMessageRatePerSecond, cur.MaximumMessageLength,
			h != nil, uri, fallback); err != nil {
			return fmt.Errorf("postgres: update room %s: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM room_logging_configurations WHERE room_id = $1`, id); err != nil {
			return fmt.Errorf("postgres: detach logging configurations from room %s: %w", id, err)
		}
		if err := insertRoomLCs(ctx, tx, id, cur.LoggingConfigurationIDs); err != nil {
			return err
		}
		// Re-read rather than trust cur: the result is then exactly what a
		// later GetRoom returns (PostgreSQL rounds to microseconds), with the
		// stored tags and no aliasing of what the callback may have kept.
		out, err = scanRoom(tx.QueryRow(ctx, roomSelect+` WHERE r.id = $1`, id))
		if err != nil {
			return fmt.Errorf("postgres: reload room %s: %w", id, err)
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
	tag, err := s.pool.Exec(ctx, `DELETE FROM rooms WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete room %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return chat.NotFound(chat.KindRoom, id)
	}
	return nil
}

// pageClause appends the cursor condition, order and limit of page to a query
// whose arguments so far are args. A Limit of zero or less means no limit.
func pageClause(where []string, args []any, alias string, page store.Page) (string, []any) {
	if page.After != nil {
		args = append(args, page.After.UpdateTime, page.After.ID)
		n := len(args)
		where = append(where, fmt.Sprintf("(%[1]supdate_time < $%[2]d OR (%[1]supdate_time = $%[2]d AND %[1]sid > $%[3]d))", alias, n-1, n))
	}
	var b strings.Builder
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	fmt.Fprintf(&b, " ORDER BY %[1]supdate_time DESC, %[1]sid", alias)
	if page.Limit > 0 {
		args = append(args, page.Limit)
		b.WriteString(" LIMIT $" + strconv.Itoa(len(args)))
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
		args = append(args, filter.Name)
		where = append(where, "r.name = $"+strconv.Itoa(len(args)))
	}
	if filter.MessageReviewHandlerURI != "" {
		args = append(args, filter.MessageReviewHandlerURI)
		where = append(where, "r.has_review AND r.review_uri = $"+strconv.Itoa(len(args)))
	}
	if filter.LoggingConfigurationID != "" {
		args = append(args, filter.LoggingConfigurationID)
		where = append(where, "EXISTS (SELECT 1 FROM room_logging_configurations f WHERE f.room_id = r.id AND f.lc_id = $"+strconv.Itoa(len(args))+")")
	}
	clause, args := pageClause(where, args, "r.", page)
	rows, err := s.pool.Query(ctx, roomSelect+clause, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list rooms: %w", err)
	}
	defer rows.Close()
	var out []*chat.Room
	for rows.Next() {
		r, err := scanRoom(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list rooms: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list rooms: %w", err)
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
	return s.withTx(ctx, func(tx pgx.Tx) error {
		if err := checkQuota(ctx, tx, "logging_configurations", chat.KindLoggingConfiguration, max); err != nil {
			return err
		}
		d := lc.Destination
		if _, err := tx.Exec(ctx, `INSERT INTO logging_configurations (id, name, create_time, update_time,
			s3_bucket, log_group, delivery_stream, state, tags) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			lc.ID, lc.Name, lc.CreateTime, lc.UpdateTime, d.S3BucketName, d.CloudWatchLogGroupName,
			d.FirehoseDeliveryStreamName, lc.State, string(tags)); err != nil {
			return fmt.Errorf("postgres: insert logging configuration %s: %w", lc.ID, err)
		}
		return nil
	})
}

// GetLoggingConfiguration implements store.Store.
func (s *Store) GetLoggingConfiguration(ctx context.Context, id string) (*chat.LoggingConfiguration, error) {
	lc, err := scanLC(s.pool.QueryRow(ctx, lcSelect+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, chat.NotFound(chat.KindLoggingConfiguration, id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get logging configuration %s: %w", id, err)
	}
	return lc, nil
}

// UpdateLoggingConfiguration implements store.Store.
func (s *Store) UpdateLoggingConfiguration(ctx context.Context, id string, update func(*chat.LoggingConfiguration) error) (*chat.LoggingConfiguration, error) {
	var out *chat.LoggingConfiguration
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		cur, err := scanLC(tx.QueryRow(ctx, lcSelect+` WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return chat.NotFound(chat.KindLoggingConfiguration, id)
		}
		if err != nil {
			return fmt.Errorf("postgres: load logging configuration %s: %w", id, err)
		}
		if err := update(cur); err != nil {
			return err
		}
		d := cur.Destination
		if _, err := tx.Exec(ctx, `UPDATE logging_configurations SET name = $2, update_time = $3, s3_bucket = $4,
			log_group = $5, delivery_stream = $6, state = $7 WHERE id = $1`,
			id, cur.Name, cur.UpdateTime, d.S3BucketName, d.CloudWatchLogGroupName, d.FirehoseDeliveryStreamName,
			cur.State); err != nil {
			return fmt.Errorf("postgres: update logging configuration %s: %w", id, err)
		}
		out, err = scanLC(tx.QueryRow(ctx, lcSelect+` WHERE id = $1`, id))
		if err != nil {
			return fmt.Errorf("postgres: reload logging configuration %s: %w", id, err)
		}
		return nil
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
	tag, err := s.pool.Exec(ctx, `DELETE FROM logging_configurations WHERE id = $1`, id)
	if pgCode(err) == pgForeignKeyViolation {
		return chat.Conflict(id, "logging configuration "+id+" is still used by at least one room")
	}
	if err != nil {
		return fmt.Errorf("postgres: delete logging configuration %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return chat.NotFound(chat.KindLoggingConfiguration, id)
	}
	return nil
}

// ListLoggingConfigurations implements store.Store.
func (s *Store) ListLoggingConfigurations(ctx context.Context, page store.Page) ([]*chat.LoggingConfiguration, error) {
	clause, args := pageClause(nil, nil, "", page)
	rows, err := s.pool.Query(ctx, lcSelect+clause, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list logging configurations: %w", err)
	}
	defer rows.Close()
	var out []*chat.LoggingConfiguration
	for rows.Next() {
		lc, err := scanLC(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list logging configurations: %w", err)
		}
		out = append(out, lc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list logging configurations: %w", err)
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
	return "", fmt.Errorf("postgres: unknown resource kind %q", kind)
}

// modifyTags runs change on the resource's tags with the row locked, so that
// concurrent merges on several nodes cannot lose each other's keys or pass the
// tag limit together.
func (s *Store) modifyTags(ctx context.Context, kind chat.Kind, id string, change func(map[string]string) (map[string]string, error)) error {
	table, err := tagTable(kind)
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(tx pgx.Tx) error {
		var raw []byte
		err := tx.QueryRow(ctx, `SELECT tags FROM `+table+` WHERE id = $1 FOR UPDATE`, id).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) {
			return chat.NotFound(kind, id)
		}
		if err != nil {
			return fmt.Errorf("postgres: load tags of %s %s: %w", kind, id, err)
		}
		cur, err := storeutil.DecodeTags(raw)
		if err != nil {
			return fmt.Errorf("postgres: %s %s: %w", kind, id, err)
		}
		next, err := change(cur)
		if err != nil {
			return err
		}
		b, err := storeutil.EncodeTags(next)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE `+table+` SET tags = $2 WHERE id = $1`, id, string(b)); err != nil {
			return fmt.Errorf("postgres: store tags of %s %s: %w", kind, id, err)
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
	var raw []byte
	err = s.pool.QueryRow(ctx, `SELECT tags FROM `+table+` WHERE id = $1`, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, chat.NotFound(kind, id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: tags of %s %s: %w", kind, id, err)
	}
	tags, err := storeutil.DecodeTags(raw)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s %s: %w", kind, id, err)
	}
	return tags, nil
}
