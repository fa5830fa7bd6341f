package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// Bans (the ivschatd BanUser extension) live in room_bans, keyed by (room,
// user). Expiry is compared with the caller's clock (now), never the
// database's, so that the API, the handshake and tests agree on one time
// source. Expired rows are invisible to every read and are deleted lazily,
// by the room's next BanUser or UnbanUser.

// banInForce is the condition, on alias b, that a ban has not expired at
// the time of its one placeholder.
const banInForce = `(b.expires_at IS NULL OR b.expires_at > ?)`

// expiresArg is ExpiresAt as an argument: NULL for a ban without end.
func (s *Store) expiresArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.d.timeArg(t)
}

// nullTimeCol scans a nullable time; NULL leaves the zero time.
type nullTimeCol struct{ t *time.Time }

func (c nullTimeCol) Scan(v any) error {
	if v == nil {
		*c.t = time.Time{}
		return nil
	}
	return timeCol(c).Scan(v)
}

// purgeExpiredBans deletes the room's bans that ended at or before now.
func (s *Store) purgeExpiredBans(ctx context.Context, tx *sql.Tx, roomID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, s.d.sql(`DELETE FROM room_bans WHERE room_id = ? AND expires_at IS NOT NULL AND expires_at <= ?`),
		roomID, s.d.timeArg(now))
	if err != nil {
		return fmt.Errorf("purge expired bans of room %s: %w", roomID, err)
	}
	return nil
}

// BanUser implements store.Store. The foreign key decides whether the room
// exists, which also covers a DeleteRoom on another node at the same moment
// (PostgreSQL locks the room row against deletion until the insert commits).
func (s *Store) BanUser(ctx context.Context, ban *chat.Ban) (*chat.Ban, error) {
	out := *ban
	err := s.call(ctx, func(ctx context.Context) error {
		return s.withTx(ctx, func(tx *sql.Tx) error {
			// Purged first, so that a new ban of a user whose previous one
			// expired starts afresh (CreatedAt) rather than continuing it.
			if err := s.purgeExpiredBans(ctx, tx, ban.RoomID, ban.CreatedAt); err != nil {
				return err
			}
			err := tx.QueryRowContext(ctx, s.d.sql(`INSERT INTO room_bans (room_id, user_id, reason, created_at, expires_at)
				VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (room_id, user_id) DO UPDATE SET reason = excluded.reason, expires_at = excluded.expires_at
				RETURNING created_at`),
				ban.RoomID, ban.UserID, ban.Reason, s.d.timeArg(ban.CreatedAt), s.expiresArg(ban.ExpiresAt)).
				Scan(timeCol{&out.CreatedAt})
			if err != nil {
				if s.d.isFKViolation(err) {
					return chat.NotFound(chat.KindRoom, ban.RoomID)
				}
				return fmt.Errorf("ban user in room %s: %w", ban.RoomID, err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UnbanUser implements store.Store.
func (s *Store) UnbanUser(ctx context.Context, roomID, userID string, now time.Time) error {
	return s.call(ctx, func(ctx context.Context) error {
		return s.withTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, s.d.sql(`DELETE FROM room_bans WHERE room_id = ? AND user_id = ?`), roomID, userID); err != nil {
				return fmt.Errorf("unban user in room %s: %w", roomID, err)
			}
			return s.purgeExpiredBans(ctx, tx, roomID, now)
		})
	})
}

// ListBans implements store.Store. The primary key (room_id, user_id)
// serves the condition, the order and the cursor.
func (s *Store) ListBans(ctx context.Context, roomID string, now time.Time, after string, limit int) ([]*chat.Ban, error) {
	q := `SELECT b.user_id, b.reason, b.created_at, b.expires_at FROM room_bans b
		WHERE b.room_id = ? AND ` + banInForce + ` AND b.user_id > ? ORDER BY b.user_id`
	args := []any{roomID, s.d.timeArg(now), after}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	var out []*chat.Ban
	err := s.call(ctx, func(ctx context.Context) error {
		return s.list(ctx, q, args, "list bans of room "+roomID, func(sc scanner) error {
			b := &chat.Ban{RoomID: roomID}
			out = append(out, b)
			return sc.Scan(&b.UserID, &b.Reason, timeCol{&b.CreatedAt}, nullTimeCol{&b.ExpiresAt})
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// getRoomBanQuery is GetRoom's statement with the user's ban in force
// joined: one more primary-key probe in the same round trip.
func (s *Store) getRoomBanQuery() string {
	return `SELECT ` + s.roomColumns() + `, b.user_id, b.reason, b.created_at, b.expires_at
		FROM rooms r LEFT JOIN room_bans b ON b.room_id = r.id AND b.user_id = ? AND ` + banInForce + `
		WHERE r.id = ?`
}

// withExtra scans a row's leading columns with sc's caller and the rest
// into extra.
type withExtra struct {
	sc    scanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.sc.Scan(append(dest, w.extra...)...) }

// GetRoomBan implements store.Store.
func (s *Store) GetRoomBan(ctx context.Context, roomID, userID string, now time.Time) (*chat.Room, *chat.Ban, error) {
	var (
		r   *chat.Room
		ban *chat.Ban
	)
	err := s.call(ctx, func(ctx context.Context) error {
		var (
			user, reason sql.NullString
			created      time.Time
			expires      time.Time
		)
		row := s.getRoomBan.QueryRowContext(ctx, userID, s.d.timeArg(now), roomID)
		var err error
		r, err = scanRoom(withExtra{row, []any{&user, &reason, nullTimeCol{&created}, nullTimeCol{&expires}}})
		if errors.Is(err, sql.ErrNoRows) {
			return chat.NotFound(chat.KindRoom, roomID)
		}
		if err != nil {
			return wrap(err, "get room %s with ban of %q", roomID, userID)
		}
		if user.Valid {
			ban = &chat.Ban{RoomID: roomID, UserID: user.String, Reason: reason.String, CreatedAt: created, ExpiresAt: expires}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return r, ban, nil
}
