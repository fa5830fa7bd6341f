package sqlstore

import (
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/store"
)

// The fixtures in testdata were written by the two separate stores this
// package replaced (commit e05f654): the SQLite file as that code left it, and
// a pg_dump of the schema it wrote. Both hold the same resources.
const (
	fixtureSQLite   = "testdata/v1-written-by-e05f654.db"
	fixturePostgres = "testdata/v1-written-by-e05f654.pg.sql"
)

// TestOpensDatabaseOfOldStoreSQLite: an existing embedded database keeps
// working after the upgrade, read and write.
func TestOpensDatabaseOfOldStoreSQLite(t *testing.T) {
	b, err := os.ReadFile(fixtureSQLite)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ivschatd.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkFixture(t, s)
}

// TestOpensDatabaseOfOldStorePostgres is the same for a PostgreSQL schema.
func TestOpensDatabaseOfOldStorePostgres(t *testing.T) {
	u := testURL(t)
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	schema := parsed.Query().Get("search_path")
	dump, err := os.ReadFile(fixturePostgres)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, strings.ReplaceAll(string(dump), "FIXTURE_SCHEMA", schema))
	conn.Close(ctx)
	if err != nil {
		t.Fatalf("load fixture: %v", err)
	}
	s, err := OpenPostgres(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkFixture(t, s)
}

func checkFixture(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	ct := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	ut := ct.Add(time.Second)
	wantLCs := []*chat.LoggingConfiguration{
		{ID: "lcFixture0001", Name: "lc", CreateTime: ct, UpdateTime: ut, Destination: chat.Destination{CloudWatchLogGroupName: "g"}, State: chat.StateActive, Tags: map[string]string{"a": "b"}},
		{ID: "lcFixture0002", Name: "", CreateTime: ct, UpdateTime: ct, Destination: chat.Destination{S3BucketName: "bkt"}, State: chat.StateActive, Tags: map[string]string{}},
	}
	wantRooms := []*chat.Room{
		{ID: "roomFixture01", Name: "room", CreateTime: ct, UpdateTime: ut, MaximumMessageRatePerSecond: 3, MaximumMessageLength: 4,
			MessageReviewHandler: &chat.MessageReviewHandler{URI: "u", FallbackResult: chat.FallbackDeny},
			Tags:                 map[string]string{"x": "y"}, LoggingConfigurationIDs: []string{"lcFixture0002", "lcFixture0001"}},
		{ID: "roomFixture02", Name: "", CreateTime: ct, UpdateTime: ct, MaximumMessageRatePerSecond: 10, MaximumMessageLength: 500,
			MessageReviewHandler: &chat.MessageReviewHandler{URI: "", FallbackResult: chat.FallbackAllow}, Tags: map[string]string{}, LoggingConfigurationIDs: []string{}},
	}
	for _, want := range wantRooms {
		got, err := s.GetRoom(ctx, want.ID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetRoom(%s) = %+v, %v; want %+v", want.ID, got, err, want)
		}
	}
	for _, want := range wantLCs {
		got, err := s.GetLoggingConfiguration(ctx, want.ID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetLoggingConfiguration(%s) = %+v, %v; want %+v", want.ID, got, err, want)
		}
	}
	rooms, err := s.ListRooms(ctx, store.RoomFilter{LoggingConfigurationID: "lcFixture0001"}, store.Page{})
	if err != nil || len(rooms) != 1 || rooms[0].ID != "roomFixture01" {
		t.Errorf("ListRooms by logging configuration = %v, %v", rooms, err)
	}

	// Writes work on the old schema, and its constraints still hold.
	if err := s.DeleteLoggingConfiguration(ctx, "lcFixture0001"); chat.ErrorCode(err) != chat.CodeConflict {
		t.Errorf("delete referenced configuration: %v, want Conflict", err)
	}
	later := ut.Add(time.Minute)
	got, err := s.UpdateRoom(ctx, "roomFixture02", func(r *chat.Room) error {
		r.Name, r.UpdateTime, r.LoggingConfigurationIDs = "renamed", later, []string{"lcFixture0001"}
		return nil
	})
	if err != nil || got.Name != "renamed" || !got.UpdateTime.Equal(later) || len(got.LoggingConfigurationIDs) != 1 {
		t.Errorf("UpdateRoom = %+v, %v", got, err)
	}
	if err := s.TagResource(ctx, chat.KindLoggingConfiguration, "lcFixture0002", map[string]string{"c": "d"}); err != nil {
		t.Error(err)
	}
	if err := s.CreateRoom(ctx, &chat.Room{ID: "roomFixture03", CreateTime: later, UpdateTime: later}, 3); err != nil {
		t.Error(err)
	}
	if err := s.CreateRoom(ctx, &chat.Room{ID: "roomFixture04", CreateTime: later, UpdateTime: later}, 3); chat.ErrorCode(err) != chat.CodeServiceQuotaExceeded {
		t.Errorf("fourth room with a quota of 3: %v, want ServiceQuotaExceeded", err)
	}
	if err := s.DeleteRoom(ctx, "roomFixture01"); err != nil {
		t.Error(err)
	}
	if err := s.DeleteLoggingConfiguration(ctx, "lcFixture0002"); err != nil {
		t.Errorf("delete configuration no longer referenced: %v", err)
	}
}
