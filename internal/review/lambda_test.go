package review

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

const testFunction = "arn:aws:lambda:eu-west-1:123456789012:function:moderate"

// lambdaServer is a Lambda-Invoke-compatible endpoint: it serves
// POST /2015-03-31/functions/{name}/invocations as AWS does, checks what the
// SDK sent and answers with reply's payload (and headers).
func lambdaServer(t testing.TB, wantRegion string, reply func(w http.ResponseWriter, got wireRequest)) (url string, calls *atomic.Int64) {
	t.Helper()
	calls = new(atomic.Int64)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if name := r.PathValue("name"); name != testFunction {
			t.Errorf("function name %q, want %q", name, testFunction)
		}
		// SigV4 with the configured key, scoped to the region and service.
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") ||
			!strings.Contains(auth, "/"+wantRegion+"/lambda/aws4_request") || !strings.Contains(auth, "Signature=") {
			t.Errorf("Authorization %q", auth)
		}
		if it := r.Header.Get("X-Amz-Invocation-Type"); it != "RequestResponse" {
			t.Errorf("X-Amz-Invocation-Type %q", it)
		}
		body, _ := io.ReadAll(r.Body)
		var got wireRequest
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("payload %q: %v", body, err)
		}
		reply(w, got)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, calls
}

func lambdaReviewer(t testing.TB, endpoint, region string) *Reviewer {
	t.Helper()
	rv, err := New(Options{
		Timeout: time.Second,
		Lambda:  LambdaOptions{Endpoint: endpoint, Region: region, AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return rv
}

func TestLambdaAllow(t *testing.T) {
	url, calls := lambdaServer(t, "eu-west-1", func(w http.ResponseWriter, got wireRequest) {
		if got.MessageID != "WhO6MW6iRdS5" || got.Sender.IP != "203.0.113.7" || got.Attributes["k"] != "v" {
			t.Errorf("payload %+v", got)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ReviewResult":"ALLOW","Content":"`+strings.ToUpper(got.Content[:5])+`","Attributes":{"checked":"yes"}}`)
	})
	// No configured region: the ARN's region signs the request.
	rv := lambdaReviewer(t, url, "")
	res := rv.Review(context.Background(), chat.MessageReviewHandler{URI: testFunction}, sampleRequest())
	want := Result{Allow: true, Content: "HELLO", Attributes: map[string]string{"checked": "yes"}}
	if !reflect.DeepEqual(res, want) || calls.Load() != 1 {
		t.Fatalf("got %+v after %d calls, want %+v", res, calls.Load(), want)
	}
}

func TestLambdaDenyConfiguredRegion(t *testing.T) {
	url, _ := lambdaServer(t, "us-east-1", func(w http.ResponseWriter, _ wireRequest) {
		io.WriteString(w, `{"ReviewResult":"DENY"}`)
	})
	res := lambdaReviewer(t, url, "us-east-1").Review(context.Background(), chat.MessageReviewHandler{URI: testFunction}, sampleRequest())
	if res.Allow || res.Fallback {
		t.Fatalf("got %+v", res)
	}
}

func TestLambdaFunctionErrorFallback(t *testing.T) {
	url, _ := lambdaServer(t, "eu-west-1", func(w http.ResponseWriter, _ wireRequest) {
		// What Lambda answers when the function throws: 200, the error
		// object as payload, and the header.
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		io.WriteString(w, `{"errorMessage":"boom","errorType":"Error","ReviewResult":"ALLOW"}`)
	})
	rv := lambdaReviewer(t, url, "")
	for _, fb := range []string{chat.FallbackAllow, chat.FallbackDeny} {
		req := sampleRequest()
		res := rv.Review(context.Background(), chat.MessageReviewHandler{URI: testFunction, FallbackResult: fb}, req)
		if !res.Fallback || res.Reason != ReasonError || res.Allow != (fb == chat.FallbackAllow) || (res.Allow && res.Content != req.Content) {
			t.Fatalf("fallback %s: got %+v", fb, res)
		}
	}
}

func TestLambdaServiceErrorAndInvalidFallback(t *testing.T) {
	status := atomic.Int64{}
	url, calls := lambdaServer(t, "eu-west-1", func(w http.ResponseWriter, _ wireRequest) {
		if status.Load() != 0 {
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(int(status.Load()))
			io.WriteString(w, `{"Type":"User","message":"Function not found"}`)
			return
		}
		io.WriteString(w, `"ALLOW"`)
	})
	rv := lambdaReviewer(t, url, "")
	h := chat.MessageReviewHandler{URI: testFunction, FallbackResult: chat.FallbackDeny}
	if res := rv.Review(context.Background(), h, sampleRequest()); res.Allow || res.Reason != ReasonInvalid {
		t.Fatalf("string payload: got %+v", res)
	}
	status.Store(404)
	if res := rv.Review(context.Background(), h, sampleRequest()); res.Allow || res.Reason != ReasonError {
		t.Fatalf("404: got %+v", res)
	}
	status.Store(503)
	if res := rv.Review(context.Background(), h, sampleRequest()); res.Allow || res.Reason != ReasonError {
		t.Fatalf("503: got %+v", res)
	}
	// No SDK retries: one request per review.
	if calls.Load() != 3 {
		t.Fatalf("%d requests for 3 reviews", calls.Load())
	}
}

func TestLambdaTimeout(t *testing.T) {
	url, _ := lambdaServer(t, "eu-west-1", func(w http.ResponseWriter, _ wireRequest) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, `{"ReviewResult":"DENY"}`)
	})
	rv, err := New(Options{
		Timeout: 50 * time.Millisecond,
		Lambda:  LambdaOptions{Endpoint: url, AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	res := rv.Review(context.Background(), chat.MessageReviewHandler{URI: testFunction}, sampleRequest())
	if !res.Allow || !res.Fallback || res.Reason != ReasonTimeout {
		t.Fatalf("got %+v", res)
	}
}

func TestNewRejectsHalfCredentials(t *testing.T) {
	if _, err := New(Options{Lambda: LambdaOptions{AccessKeyID: "x"}}); err == nil {
		t.Fatal("New accepted an access key without a secret")
	}
}
