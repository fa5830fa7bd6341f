package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/store"
	"github.com/ivschatd/ivschatd/internal/store/storetest"
)

const urlEnv = "IVSCHATD_TEST_POSTGRES_URL"

// testURL returns a URL whose search_path is a new, empty schema that is
// dropped when the test ends, so parallel runs (and subtests) never see each
// other's tables.
func testURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(urlEnv)
	if base == "" {
		t.Skip(urlEnv + " not set; skipping PostgreSQL store tests")
	}
	schema := "ivschatd_test_" + strings.ToLower(chat.NewID())
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", urlEnv, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", urlEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openPostgres(t testing.TB) *Store {
	t.Helper()
	s, err := OpenPostgres(context.Background(), testURL(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestStorePostgres(t *testing.T) {
	if os.Getenv(urlEnv) == "" {
		// One skip for the suite instead of one per subtest.
		t.Skip(urlEnv + " not set; skipping PostgreSQL store tests")
	}
	storetest.Run(t, func(t *testing.T) store.Store { return openPostgres(t) })
}

// TestTwoNodes runs the quota and reference races against two Stores (two
// pools, as two nodes would have) on one schema.
func TestTwoNodesPostgres(t *testing.T) {
	u := testURL(t)
	ctx := t.Context()
	var nodes [2]*Store
	for i := range nodes {
		s, err := OpenPostgres(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		nodes[i] = s
	}
	checkQuotaAcrossStores(t, nodes)
}

// TestConcurrentMigrations starts several nodes on an empty schema at once;
// the advisory lock must let exactly one create the tables.
func TestConcurrentMigrationsPostgres(t *testing.T) {
	u := testURL(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			s, err := OpenPostgres(ctx, u)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
}

func TestMigrationsPostgres(t *testing.T) {
	u := testURL(t)
	ctx := t.Context()
	s, err := OpenPostgres(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(migrationFiles, postgresDialect.migrationDir)
	if err != nil {
		t.Fatal(err)
	}
	var cur int
	if err := s.w.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&cur); err != nil || cur != len(ms) {
		t.Fatalf("schema version = %d, %v; want %d", cur, err, len(ms))
	}

	// Fake later migrations: each applied once, a failing one not at all.
	v2 := Migration{Version: len(ms) + 1, Name: "x_add.sql", SQL: "CREATE TABLE extra (x integer); INSERT INTO extra VALUES (1);"}
	bad := Migration{Version: len(ms) + 2, Name: "x_bad.sql", SQL: "CREATE TABLE extra2 (x integer); INSERT INTO nowhere VALUES (1);"}
	more := append(append([]Migration{}, ms...), v2)
	for range 2 {
		if err := migrate(ctx, &postgresDialect, s.w, more); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM extra").Scan(&n); err != nil || n != 1 {
		t.Errorf("rows in extra = %d, %v; want 1", n, err)
	}
	if err := migrate(ctx, &postgresDialect, s.w, append(more, bad)); err == nil || !strings.Contains(err.Error(), "x_bad.sql") {
		t.Errorf("failing migration: %v, want an error naming it", err)
	}
	if err := s.w.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&cur); err != nil || cur != v2.Version {
		t.Errorf("version after a failed migration = %d, %v; want %d", cur, err, v2.Version)
	}
	if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'extra2'").Scan(&n); err != nil || n != 0 {
		t.Errorf("a failed migration left table extra2 behind (%d, %v)", n, err)
	}
	s.Close()

	// The schema is now newer than the embedded migrations: refuse it.
	_, err = OpenPostgres(ctx, u)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(v2.Version)) {
		t.Errorf("error %q does not name the database's version", err)
	}
}

func TestOpenBadURLPostgres(t *testing.T) {
	_, err := OpenPostgres(t.Context(), "postgres://user:secret@127.0.0.1:1/x?sslmode=bogus")
	if err == nil {
		t.Fatal("Open with a bad URL succeeded")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
}

// seedPostgresRooms creates 200 rooms with a tag and a logging
// configuration each, for the PostgreSQL read benchmarks.
func seedPostgresRooms(b *testing.B, s *Store) []string {
	ctx := context.Background()
	now := chat.Now()
	lc := &chat.LoggingConfiguration{ID: chat.NewID(), CreateTime: now, UpdateTime: now, State: chat.StateActive}
	if err := s.CreateLoggingConfiguration(ctx, lc, 10); err != nil {
		b.Fatal(err)
	}
	var ids []string
	for range 200 {
		r := &chat.Room{ID: chat.NewID(), CreateTime: now, UpdateTime: now, Tags: map[string]string{"k": "v"},
			LoggingConfigurationIDs: []string{lc.ID}}
		if err := s.CreateRoom(ctx, r, 1000); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

func BenchmarkGetRoomPostgres(b *testing.B) {
	s := openPostgres(b)
	defer s.Close()
	ctx := benchCtx(b)
	ids := seedPostgresRooms(b, s)
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
