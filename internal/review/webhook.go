package review

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the webhook signature (see the package
// documentation for the scheme).
const SignatureHeader = "X-Ivschatd-Signature"

const userAgent = "ivschatd-review/1"

func (r *Reviewer) invokeWebhook(ctx context.Context, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	// Hosts refused by what the URL says (an IP literal, a name not on the
	// allow-list) fail here, before any DNS query; the dialer checks every
	// resolved address.
	if err := r.allow.CheckHost(req.URL.Hostname()); err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if len(r.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(r.secret, time.Now(), body))
	}
	resp, err := r.webhook.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() {
		// Drain a little of what is left so the connection can be reused;
		// a handler that sends more than that loses its keep-alive.
		io.CopyN(io.Discard, resp.Body, 4<<10)
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &handlerError{fmt.Sprintf("webhook answered HTTP %d", resp.StatusCode)}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBytes {
		return nil, invalid("answer larger than %d bytes", maxResponseBytes)
	}
	return b, nil
}

// Sign returns the signature header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Signature verification errors.
var (
	ErrSignatureMissing   = errors.New("review: signature header missing or malformed")
	ErrSignatureMismatch  = errors.New("review: signature does not match")
	ErrSignatureTimestamp = errors.New("review: signature timestamp outside the tolerance")
)

// VerifySignature checks a webhook request's X-Ivschatd-Signature header
// against the raw body: some v1 must be the HMAC of "<t>.<body>" and t must
// be within tolerance of now (tolerance ≤ 0 skips the time check, which
// leaves captured requests replayable forever). Five minutes is a good
// tolerance.
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrSignatureMissing
	}
	want := mac(secret, ts, body)
	matched := false
	for _, sig := range sigs {
		// Constant time, so response timing does not reveal how much of a
		// forged signature was right.
		if hmac.Equal(sig, want) {
			matched = true
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	// Checked after the MAC: an unauthenticated t says nothing.
	if tolerance > 0 {
		if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
			return ErrSignatureTimestamp
		}
	}
	return nil
}
