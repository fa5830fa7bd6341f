package ratelimit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	var b Bucket
	now := time.Unix(0, 0)
	for i := range 3 {
		if !b.Allow(now, 3) {
			t.Fatalf("request %d refused", i)
		}
	}
	if b.Allow(now, 3) {
		t.Fatal("fourth request allowed")
	}
	if !b.Allow(now.Add(400*time.Millisecond), 3) {
		t.Fatal("not refilled")
	}
}
