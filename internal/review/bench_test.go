package review

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// BenchmarkReviewWebhook measures one review round trip to a webhook on
// loopback (signing, keep-alive POST, parsing), the cost a room with a
// handler adds to each message.
func BenchmarkReviewWebhook(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"ReviewResult":"ALLOW","Content":"hello","Attributes":{"k":"v"}}`)
	}))
	defer srv.Close()
	rv := newReviewer(b, time.Second)
	h := chat.MessageReviewHandler{URI: srv.URL}
	req := sampleRequest()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if res := rv.Review(context.Background(), h, req); res.Fallback {
				b.Fatalf("fallback: %s", res.Reason)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if res := rv.Review(context.Background(), h, req); res.Fallback {
					b.Errorf("fallback: %s", res.Reason)
					return
				}
			}
		})
	})
}
