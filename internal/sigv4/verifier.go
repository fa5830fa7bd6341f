// Package sigv4 authenticates control-plane requests signed with AWS
// Signature Version 4, the way AWS itself verifies them, so that unchanged AWS
// SDKs and the aws CLI can talk to ivschatd with static access keys. It also
// holds the small allow-only access policies attached to those keys.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// Credential is one static access key known to the server.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	Policy          Policy // zero value = full access (ivschat:* on *)
}

// MaxSkew is how far the request time may be from the server clock, as at AWS.
const MaxSkew = 15 * time.Minute

const (
	amzDateFormat = "20060102T150405Z"
	// maxCachedKeys bounds the signing-key cache. Entries are per key, day and
	// region, so a handful of keys used in a couple of regions needs only a few
	// entries; the bound only matters when a client with a valid key ID
	// (but possibly no secret) sprays random regions at us.
	maxCachedKeys = 512
)

// Verifier checks SigV4 signatures for one service. It is safe for
// concurrent use.
type Verifier struct {
	service string
	creds   map[string]*Credential

	mu   sync.RWMutex
	keys map[keyID]*signingKey
}

// keyID identifies a derived signing key. The access key ID stands for the
// secret: within one Verifier each ID has exactly one secret.
type keyID struct{ accessKeyID, date, region string }

// NewVerifier returns a Verifier for service (the signing name in the
// credential scope, "ivschat" for us) that accepts the given credentials.
func NewVerifier(service string, creds []Credential) (*Verifier, error) {
	if service == "" {
		return nil, errors.New("sigv4: empty service name")
	}
	v := &Verifier{
		service: service,
		creds:   make(map[string]*Credential, len(creds)),
		keys:    make(map[keyID]*signingKey),
	}
	for i, c := range creds {
		switch {
		case c.AccessKeyID == "":
			return nil, fmt.Errorf("sigv4: credential %d has an empty access key ID", i)
		case !validToken(c.AccessKeyID):
			// A key ID that ParseAuthorization can never produce would be a
			// credential nobody can use: better to say so at startup.
			return nil, fmt.Errorf("sigv4: access key ID %q contains characters that cannot appear in a credential scope", c.AccessKeyID)
		case c.SecretAccessKey == "":
			return nil, fmt.Errorf("sigv4: access key %s has an empty secret", c.AccessKeyID)
		case v.creds[c.AccessKeyID] != nil:
			return nil, fmt.Errorf("sigv4: duplicate access key ID %s", c.AccessKeyID)
		}
		c.Policy.Statements = slices.Clone(c.Policy.Statements)
		v.creds[c.AccessKeyID] = &c
	}
	return v, nil
}

// bufPool holds the scratch buffers for the canonical request and string to
// sign, so a verification allocates almost nothing.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// putBuf returns a scratch buffer to the pool unless one huge request
// (thousands of query parameters) grew it: keeping that would pin its memory
// for good.
func putBuf(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		bufPool.Put(bp)
	}
}

// Verify checks r, whose full body has already been read into body, at time
// now. It returns the credential that signed it (shared; do not modify) and
// the region from the credential scope. Every error is a *chat.Error.
func (v *Verifier) Verify(r *http.Request, body []byte, now time.Time) (*Credential, string, error) {
	authz := r.Header.Values("Authorization")
	if len(authz) == 0 || len(authz) == 1 && strings.TrimSpace(authz[0]) == "" {
		return nil, "", &chat.Error{Code: chat.CodeMissingAuthenticationToken, Message: msgMissingToken}
	}
	if len(authz) > 1 {
		return nil, "", incomplete("Request has more than one Authorization header.")
	}
	a, err := ParseAuthorization(authz[0])
	if err != nil {
		return nil, "", err
	}
	names := lowerNames(a.SignedHeaders)
	if !slices.Contains(names, "host") {
		return nil, "", incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}

	// The request time comes from X-Amz-Date, else Date. AWS insists that
	// whichever is used be signed, so that the header every intermediary and
	// log sees is the one the signature covers, not only its copy inside the
	// string to sign.
	var t time.Time
	var amzDate string
	if xd := r.Header.Get("X-Amz-Date"); xd != "" {
		if !slices.Contains(names, "x-amz-date") {
			return nil, "", incomplete("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization when it is present.")
		}
		var ok bool
		if t, ok = parseAmzDate(xd); !ok {
			return nil, "", incomplete("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", got '" + xd + "'.")
		}
		amzDate = xd
	} else if d := r.Header.Get("Date"); d != "" {
		if !slices.Contains(names, "date") {
			return nil, "", incomplete("'Date' must be a 'SignedHeader' in the AWS Authorization when it is used as the request date.")
		}
		if t, err = http.ParseTime(d); err != nil {
			return nil, "", incomplete("Date header must be an RFC 1123 date, got '" + d + "'.")
		}
		amzDate = t.UTC().Format(amzDateFormat)
	} else {
		return nil, "", incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=" + authz[0])
	}

	if a.Service != v.service {
		return nil, "", invalid("Credential should be scoped to correct service: '" + v.service + "'. ")
	}
	cred := v.creds[a.AccessKeyID]
	if cred == nil {
		return nil, "", &chat.Error{Code: chat.CodeUnrecognizedClient, Message: msgUnrecognized}
	}
	if err := checkSkew(t, now); err != nil {
		return nil, "", err
	}
	if a.Date != amzDate[:8] {
		return nil, "", invalid(fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			a.Date, amzDate[:8], amzDate))
	}

	// The payload hash binds the body to the signature. A client that sends
	// X-Amz-Content-Sha256 must send the real hash: UNSIGNED-PAYLOAD and
	// streaming modes would leave the body unauthenticated.
	var payloadHash [2 * sha256.Size]byte
	sum := sha256.Sum256(body)
	hex.Encode(payloadHash[:], sum[:])
	if hs := r.Header.Values("X-Amz-Content-Sha256"); len(hs) > 0 {
		if len(hs) != 1 || hs[0] != string(payloadHash[:]) {
			return nil, "", invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
	}

	bp := bufPool.Get().(*[]byte)
	defer putBuf(bp)
	buf := (*bp)[:0]

	buf = append(buf, r.Method...)
	buf = append(buf, '\n')
	buf = appendCanonicalURI(buf, rawPath(r))
	buf = append(buf, '\n')
	buf = appendCanonicalQuery(buf, rawQuery(r))
	buf = append(buf, '\n')
	buf, absent := appendCanonicalHeaders(buf, r, names)
	if absent != "" {
		*bp = buf
		return nil, "", invalid("Header '" + absent + "' is listed in SignedHeaders but is not present in the request.")
	}
	buf = append(buf, '\n')
	buf = appendSignedHeaders(buf, names)
	buf = append(buf, '\n')
	buf = append(buf, payloadHash[:]...)
	crLen := len(buf)
	crSum := sha256.Sum256(buf)

	// The string to sign goes after the canonical request in the same buffer,
	// which is kept intact for the error message.
	buf = append(buf, Algorithm+"\n"...)
	buf = append(buf, amzDate...)
	buf = append(buf, '\n')
	buf = append(buf, a.Date...)
	buf = append(buf, '/')
	buf = append(buf, a.Region...)
	buf = append(buf, '/')
	buf = append(buf, a.Service...)
	buf = append(buf, "/"+scopeTerminator+"\n"...)
	buf = hex.AppendEncode(buf, crSum[:])
	*bp = buf

	sigHex := v.signingKey(cred, a.Date, a.Region).sign(buf[crLen:])
	if !hmac.Equal(sigHex[:], []byte(a.Signature)) {
		return nil, "", invalid(msgSignatureInvalid +
			"\n\nThe Canonical String for this request should have been\n'" + string(buf[:crLen]) +
			"'\n\nThe String-to-Sign should have been\n'" + string(buf[crLen:]) + "'\n")
	}
	return cred, a.Region, nil
}

// checkSkew rejects request times more than MaxSkew away from now, with
// AWS's wording so that clients' clock-skew detection recognises it.
func checkSkew(t, now time.Time) error {
	if earliest := now.Add(-MaxSkew); t.Before(earliest) {
		ts := t.UTC().Format(amzDateFormat)
		return invalid(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			ts, earliest.UTC().Format(amzDateFormat), now.UTC().Format(amzDateFormat)))
	}
	if latest := now.Add(MaxSkew); t.After(latest) {
		ts := t.UTC().Format(amzDateFormat)
		return invalid(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 15 min.)",
			ts, latest.UTC().Format(amzDateFormat), now.UTC().Format(amzDateFormat)))
	}
	return nil
}

// signingKey is a derived key with a pool of HMAC states keyed with it.
// Pooling matters: keying an HMAC costs two SHA-256 blocks and six
// allocations, as much as the rest of a verification's hashing.
type signingKey struct {
	key  [sha256.Size]byte
	macs sync.Pool
}

// sign returns the hex HMAC-SHA256 of msg under k.
func (k *signingKey) sign(msg []byte) [2 * sha256.Size]byte {
	m, _ := k.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, k.key[:])
	} else {
		m.Reset()
	}
	m.Write(msg)
	var sum [sha256.Size]byte
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], m.Sum(sum[:0]))
	k.macs.Put(m)
	return out
}

// signingKey returns the derived key for cred on date in region, computing
// it at most once while cached: derivation costs four HMACs, and without the
// cache every request would pay them.
func (v *Verifier) signingKey(cred *Credential, date, region string) *signingKey {
	id := keyID{cred.AccessKeyID, date, region}
	v.mu.RLock()
	k := v.keys[id]
	v.mu.RUnlock()
	if k != nil {
		return k
	}
	k = &signingKey{key: deriveKey(cred.SecretAccessKey, date, region, v.service)}
	// Clone so the cache does not pin the request's header strings.
	id.date, id.region = strings.Clone(date), strings.Clone(region)
	v.mu.Lock()
	if prev := v.keys[id]; prev != nil {
		// Another goroutine won the race; share its pool.
		k = prev
	} else {
		if len(v.keys) >= maxCachedKeys {
			// Evict an arbitrary entry (map order is random). Keys of past
			// days are never looked up again, and whatever goes is cheap to
			// recompute.
			for old := range v.keys {
				delete(v.keys, old)
				break
			}
		}
		v.keys[id] = k
	}
	v.mu.Unlock()
	return k
}

// deriveKey is the SigV4 key derivation chain:
// HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
func deriveKey(secret, date, region, service string) [sha256.Size]byte {
	var key [sha256.Size]byte
	k := hmacSum([]byte("AWS4"+secret), date, key[:0])
	k = hmacSum(k, region, key[:0])
	k = hmacSum(k, service, key[:0])
	hmacSum(k, scopeTerminator, key[:0])
	return key
}

// hmacSum appends HMAC(key, data) to dst. dst may share key's memory: the
// key is consumed by hmac.New before anything is written.
func hmacSum(key []byte, data string, dst []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(dst)
}

// parseAmzDate parses the 16-byte X-Amz-Date format by hand; time.Parse's
// layout interpretation is a measurable part of a verification.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != 16 || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d, h, mi, sec := num(0, 4), num(4, 2), num(6, 2), num(9, 2), num(11, 2), num(13, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	if t.Day() != d {
		return time.Time{}, false // 31 April and the like would normalise into the next month
	}
	return t, true
}
