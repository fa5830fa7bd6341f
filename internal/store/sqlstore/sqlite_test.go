package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/store"
	"github.com/ivschatd/ivschatd/internal/store/storetest"
)

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "ivschatd.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestStoreSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// TestSettings checks the per-connection settings that durability and the
// reference checks depend on; they are easy to lose in a DSN edit.
func TestSettings(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	ctx := t.Context()
	for _, c := range []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{s.w, "journal_mode", "wal"},
		{s.w, "synchronous", "2"}, // FULL
		{s.w, "foreign_keys", "1"},
		{s.w, "busy_timeout", fmt.Sprint(busyTimeoutMS)},
		{s.r, "journal_mode", "wal"},
		{s.r, "query_only", "1"},
		{s.r, "busy_timeout", fmt.Sprint(busyTimeoutMS)},
	} {
		var got string
		if err := c.db.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", c.pragma, err)
		}
		if got != c.want {
			t.Errorf("PRAGMA %s = %q, want %q", c.pragma, got, c.want)
		}
	}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ivschatd.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	now := chat.Now()
	lc := &chat.LoggingConfiguration{ID: chat.NewID(), Name: "lc", CreateTime: now, UpdateTime: now,
		Destination: chat.Destination{CloudWatchLogGroupName: "g"}, State: chat.StateActive, Tags: map[string]string{"a": "b"}}
	room := &chat.Room{ID: chat.NewID(), Name: "room", CreateTime: now, UpdateTime: now, MaximumMessageRatePerSecond: 3,
		MaximumMessageLength: 4, MessageReviewHandler: &chat.MessageReviewHandler{URI: "u", FallbackResult: chat.FallbackDeny},
		Tags: map[string]string{"x": "y"}, LoggingConfigurationIDs: []string{lc.ID}}
	if err := s.CreateLoggingConfiguration(ctx, lc, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRoom(ctx, room, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.TagResource(ctx, chat.KindRoom, room.ID, map[string]string{"z": "w"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.GetRoom(ctx, room.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "room" || !got.UpdateTime.Equal(now) || got.MessageReviewHandler == nil || got.MessageReviewHandler.URI != "u" ||
		len(got.LoggingConfigurationIDs) != 1 || got.LoggingConfigurationIDs[0] != lc.ID || len(got.Tags) != 2 || got.Tags["z"] != "w" {
		t.Errorf("room after reopen = %+v", got)
	}
	gotLC, err := s.GetLoggingConfiguration(ctx, lc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if gotLC.Destination != lc.Destination || gotLC.Tags["a"] != "b" || !gotLC.CreateTime.Equal(now) {
		t.Errorf("logging configuration after reopen = %+v", gotLC)
	}
	// References still enforced after reopen.
	if err := s.DeleteLoggingConfiguration(ctx, lc.ID); chat.ErrorCode(err) != chat.CodeConflict {
		t.Errorf("delete referenced configuration after reopen: %v, want Conflict", err)
	}
}

// TestTwoStoresOneFile stands in for two processes sharing a file: the
// single-writer connection no longer serializes them, BEGIN IMMEDIATE and the
// busy timeout must.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivschatd.db")
	var stores [2]*Store
	for i := range stores {
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	checkQuotaAcrossStores(t, stores)
}

// checkQuotaAcrossStores races CreateRoom through two Stores on one database
// (two nodes, or two processes sharing a file): exactly the quota's worth of
// rooms may be created, whichever Store takes them.
func checkQuotaAcrossStores(t *testing.T, stores [2]*Store) {
	t.Helper()
	ctx := t.Context()
	const max = 7
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for w := range 10 {
		wg.Go(func() {
			for range 3 {
				now := chat.Now()
				err := stores[w%2].CreateRoom(ctx, &chat.Room{ID: chat.NewID(), CreateTime: now, UpdateTime: now}, max)
				if err != nil && chat.ErrorCode(err) != chat.CodeServiceQuotaExceeded {
					t.Error(err)
				}
				mu.Lock()
				if err == nil {
					ok++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	rooms, err := stores[1].ListRooms(ctx, store.RoomFilter{}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if ok != max || len(rooms) != max {
		t.Errorf("%d creates succeeded and %d rooms stored through two stores, want %d", ok, len(rooms), max)
	}
}

func versions(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestMigrationsEmbedded(t *testing.T) {
	ms, err := loadMigrations(migrationFiles, sqliteDialect.migrationDir)
	if err != nil {
		t.Fatal(err)
	}
	s := openTemp(t)
	defer s.Close()
	got := versions(t, s.w)
	if len(got) != len(ms) || got[len(got)-1] != ms[len(ms)-1].Version {
		t.Errorf("schema_migrations = %v, want 1..%d", got, len(ms))
	}
}

func TestMigrationsRefuseNewerDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivschatd.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(t.Context(), "INSERT INTO schema_migrations (version) VALUES (999)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = OpenSQLite(path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer database: %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "999") {
		t.Errorf("error %q does not name the database's version", err)
	}
}

func TestMigrate(t *testing.T) {
	ctx := t.Context()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db")+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	v1 := Migration{Version: 1, Name: "0001_a.sql", SQL: "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);"}
	v2 := Migration{Version: 2, Name: "0002_b.sql", SQL: "CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (2);"}
	bad := Migration{Version: 3, Name: "0003_bad.sql", SQL: "CREATE TABLE c (z INTEGER); INSERT INTO nowhere VALUES (1);"}

	if err := migrate(ctx, &sqliteDialect, db, []Migration{v1}); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, &sqliteDialect, db, []Migration{v1, v2}); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, &sqliteDialect, db, []Migration{v1, v2}); err != nil { // idempotent
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM a").Scan(&n); err != nil || n != 2 {
		t.Errorf("rows in a = %d, %v; want 2 (each migration applied once)", n, err)
	}
	if err := migrate(ctx, &sqliteDialect, db, []Migration{v1, v2, bad}); err == nil || !strings.Contains(err.Error(), "0003_bad.sql") {
		t.Fatalf("failing migration: %v, want an error naming it", err)
	}
	if got := versions(t, db); fmt.Sprint(got) != "[1 2]" {
		t.Errorf("versions after a failed migration = %v, want [1 2]", got)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name = 'c'").Scan(&n); err != nil || n != 0 {
		t.Errorf("a failed migration left table c behind (%d, %v)", n, err)
	}
	if err := migrate(ctx, &sqliteDialect, db, []Migration{v1}); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("migrate with fewer migrations than applied: %v, want ErrSchemaTooNew", err)
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	ms, err := loadMigrations(fstest.MapFS{
		"migrations/0002_second.sql": file("B"),
		"migrations/0001_first.sql":  file("A"),
	}, "migrations")
	if err != nil || len(ms) != 2 || ms[0].SQL != "A" || ms[1].Version != 2 {
		t.Errorf("loadMigrations = %+v, %v", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"gap":     {"migrations/0001_a.sql": file(""), "migrations/0003_c.sql": file("")},
		"badname": {"migrations/first.sql": file("")},
		"empty":   {},
	} {
		if _, err := loadMigrations(fsys, "migrations"); err == nil {
			t.Errorf("%s: loadMigrations succeeded, want an error", name)
		}
	}
}

func TestOpenRejectsBadPaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if s, err := OpenSQLite(p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}

func benchStore(b *testing.B) (*Store, []string) {
	s := openTemp(b)
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	now := chat.Now()
	var lcIDs []string
	for range 3 {
		lc := &chat.LoggingConfiguration{ID: chat.NewID(), CreateTime: now, UpdateTime: now, State: chat.StateActive}
		if err := s.CreateLoggingConfiguration(ctx, lc, 100); err != nil {
			b.Fatal(err)
		}
		lcIDs = append(lcIDs, lc.ID)
	}
	var ids []string
	for i := range 1000 {
		r := &chat.Room{ID: chat.NewID(), Name: fmt.Sprint("room", i), CreateTime: now, UpdateTime: now,
			MaximumMessageRatePerSecond: 10, MaximumMessageLength: 500, Tags: map[string]string{"k": "v"},
			MessageReviewHandler: &chat.MessageReviewHandler{URI: "u", FallbackResult: "ALLOW"}, LoggingConfigurationIDs: lcIDs[:i%4]}
		if err := s.CreateRoom(ctx, r, 100000); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return s, ids
}

func BenchmarkGetRoomSQLite(b *testing.B) {
	s, ids := benchStore(b)
	ctx := benchCtx(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.GetRoom(ctx, ids[i%len(ids)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkListRooms100SQLite(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		rs, err := s.ListRooms(ctx, store.RoomFilter{}, store.Page{Limit: 100})
		if err != nil || len(rs) != 100 {
			b.Fatal(len(rs), err)
		}
	}
}

func BenchmarkCreateRoomSQLite(b *testing.B) {
	s := openTemp(b)
	defer s.Close()
	ctx := context.Background()
	now := chat.Now()
	for b.Loop() {
		r := &chat.Room{ID: chat.NewID(), CreateTime: now, UpdateTime: now}
		if err := s.CreateRoom(ctx, r, 1<<30); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCtx is the context of a benchmark's calls: context.Background(), or
// with BENCH_REQCTX set a cancellable one, as an HTTP request's is. The
// distinction matters: database/sql and both drivers watch a cancellable
// context with a goroutine per query, so the background figure is the floor.
func benchCtx(b *testing.B) context.Context {
	if os.Getenv("BENCH_REQCTX") == "" {
		return context.Background()
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ctx
}
