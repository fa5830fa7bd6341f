package sqlstore

import (
	"errors"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/faultproxy"
	"github.com/ivschatd/ivschatd/internal/store"
)

// TestUnavailablePostgres: with the database behind a black hole or refusing
// connections, every call fails within the operation timeout with
// store.ErrUnavailable, and the same Store serves again once it is back.
func TestUnavailablePostgres(t *testing.T) {
	proxy, viaProxy := faultproxy.InFront(t, testURL(t))
	s, err := OpenPostgres(t.Context(), viaProxy)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := chat.Now()
	if err := s.CreateRoom(t.Context(), &chat.Room{ID: "r1", CreateTime: now, UpdateTime: now}, 10); err != nil {
		t.Fatal(err)
	}
	for _, fault := range []struct {
		name  string
		apply func()
	}{{"frozen", proxy.Freeze}, {"cut", proxy.Cut}} {
		fault.apply()
		for name, call := range map[string]func() error{
			"GetRoom": func() error { _, err := s.GetRoom(t.Context(), "r1"); return err },
			"CreateRoom": func() error {
				return s.CreateRoom(t.Context(), &chat.Room{ID: "r2", CreateTime: now, UpdateTime: now}, 10)
			},
			"Ping": func() error { return s.Ping(t.Context()) },
		} {
			start := time.Now()
			err := call()
			took := time.Since(start)
			if !errors.Is(err, store.ErrUnavailable) || chat.ErrorCode(err) != chat.CodeServiceUnavailable {
				t.Errorf("%s %s: %v, want store.ErrUnavailable", fault.name, name, err)
			}
			if limit := postgresDialect.opTimeout + time.Second; took > limit {
				t.Errorf("%s %s took %v, want at most %v", fault.name, name, took, limit)
			}
		}
		proxy.Heal()
		if _, err := s.GetRoom(t.Context(), "r1"); err != nil {
			t.Errorf("GetRoom after the %s database is back: %v", fault.name, err)
		}
	}
}
