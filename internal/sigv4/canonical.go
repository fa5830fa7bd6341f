package sigv4

import (
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

const upperHex = "0123456789ABCDEF"

// unreserved reports whether c is left as is by AWS URI encoding (RFC 3986
// unreserved characters).
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// appendURIEncode appends s percent-encoded the AWS way: every byte outside
// the unreserved set (and '/', if keepSlash) becomes %XX with upper-case hex,
// so a space is %20, never '+'.
func appendURIEncode(dst []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || keepSlash && c == '/' {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst
}

// rawPath is the request path exactly as the client put it on the wire.
// Clients sign the path they send (already percent-encoded once), and AWS
// encodes it once more; decoding first would fold "%2F" and "/" together and
// break every ARN in a path.
func rawPath(r *http.Request) string {
	uri := r.RequestURI
	if uri == "" {
		if r.URL == nil {
			return ""
		}
		return r.URL.EscapedPath()
	}
	// Absolute form (GET http://host/path HTTP/1.1), as sent to proxies.
	if !strings.HasPrefix(uri, "/") {
		if i := strings.Index(uri, "://"); i >= 0 {
			uri = uri[i+3:]
			if j := strings.IndexByte(uri, '/'); j >= 0 {
				uri = uri[j:]
			} else {
				uri = ""
			}
		}
	}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	return uri
}

// appendCanonicalURI appends the canonical URI of the raw path. There is no
// dot-segment or slash normalisation: that is an S3 exception, and all other
// services sign the path verbatim.
func appendCanonicalURI(dst []byte, path string) []byte {
	if path == "" {
		return append(dst, '/')
	}
	return appendURIEncode(dst, path, true)
}

// rawQuery is the query string as sent on the wire, taken from the same
// place as rawPath so that a handler rewriting r.URL cannot make the two
// disagree.
func rawQuery(r *http.Request) string {
	if r.RequestURI == "" {
		if r.URL == nil {
			return ""
		}
		return r.URL.RawQuery
	}
	_, q, _ := strings.Cut(r.RequestURI, "?")
	return q
}

type queryParam struct{ key, value string }

// appendCanonicalQuery appends the canonical query string: each parameter
// decoded and re-encoded with the AWS rule, sorted by key and then value.
// Repeated parameters are all kept, even exact duplicates, because that is
// what clients sign (paws sends tagKeys=a&tagKeys=a when asked to).
func appendCanonicalQuery(dst []byte, raw string) []byte {
	if raw == "" {
		return dst
	}
	var buf [8]queryParam
	params := buf[:0]
	for raw != "" {
		var piece string
		piece, raw, _ = strings.Cut(raw, "&")
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		params = append(params, queryParam{
			key:   string(appendURIEncode(nil, queryUnescape(k), false)),
			value: string(appendURIEncode(nil, queryUnescape(v), false)),
		})
	}
	slices.SortFunc(params, func(a, b queryParam) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	for i, p := range params {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p.key...)
		dst = append(dst, '=')
		dst = append(dst, p.value...)
	}
	return dst
}

// queryUnescape decodes like url.ParseQuery ('+' is a space), which is how
// the SDKs read the query they sign. A malformed escape is kept literally
// rather than dropped so that it still takes part in the signature.
func queryUnescape(s string) string {
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}

// headerKeys maps the lower-case names clients commonly sign to Go's
// canonical header keys, sparing an allocation per header on the hot path.
var headerKeys = map[string]string{
	"content-type":          "Content-Type",
	"content-length":        "Content-Length",
	"content-md5":           "Content-Md5",
	"date":                  "Date",
	"x-amz-date":            "X-Amz-Date",
	"x-amz-content-sha256":  "X-Amz-Content-Sha256",
	"x-amz-security-token":  "X-Amz-Security-Token",
	"x-amz-target":          "X-Amz-Target",
	"x-amz-user-agent":      "X-Amz-User-Agent",
	"amz-sdk-invocation-id": "Amz-Sdk-Invocation-Id",
	"amz-sdk-request":       "Amz-Sdk-Request",
	"user-agent":            "User-Agent",
	"accept":                "Accept",
}

// headerValues returns the values of the lower-case header name. Go's server
// moves some headers out of r.Header; they are read back from where it put
// them.
func headerValues(r *http.Request, name string) []string {
	if name == "host" {
		// r.Host is authoritative: the server removed Host from r.Header.
		if r.Host == "" {
			return nil
		}
		return []string{r.Host}
	}
	key, ok := headerKeys[name]
	if !ok {
		key = textproto.CanonicalMIMEHeaderKey(name)
	}
	if vs := r.Header[key]; len(vs) > 0 {
		return vs
	}
	switch name {
	case "content-length":
		// Go clients omit "Content-Length: 0" on body-less requests even when
		// the signer listed it, and the value is then zero by definition.
		if r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		if len(r.TransferEncoding) > 0 {
			return r.TransferEncoding
		}
	}
	return nil
}

// appendCanonicalHeaders appends one "name:value\n" line per signed header, in
// the order the client listed them, and returns the name of the first signed
// header the request lacks, if any.
func appendCanonicalHeaders(dst []byte, r *http.Request, names []string) ([]byte, string) {
	for _, name := range names {
		if name == "host" {
			// Written directly: every request signs host, and wrapping r.Host
			// in a slice would cost an allocation each time.
			if r.Host == "" {
				return dst, name
			}
			dst = append(dst, "host:"...)
			dst = appendTrimmed(dst, r.Host)
			dst = append(dst, '\n')
			continue
		}
		values := headerValues(r, name)
		if len(values) == 0 {
			return dst, name
		}
		dst = append(dst, name...)
		dst = append(dst, ':')
		for i, v := range values {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendTrimmed(dst, v)
		}
		dst = append(dst, '\n')
	}
	return dst, ""
}

// appendTrimmed appends v without leading and trailing blanks and with each
// inner run of spaces collapsed to one, as the canonical form requires.
func appendTrimmed(dst []byte, v string) []byte {
	v = trimBlank(v)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' && i > 0 && v[i-1] == ' ' {
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// appendSignedHeaders appends the SignedHeaders line: the lower-case names
// joined with ';'.
func appendSignedHeaders(dst []byte, names []string) []byte {
	for i, n := range names {
		if i > 0 {
			dst = append(dst, ';')
		}
		dst = append(dst, n...)
	}
	return dst
}

// lowerNames returns names in lower case, reusing the slice when they already
// are (they always are from real clients).
func lowerNames(names []string) []string {
	for i, n := range names {
		if l := strings.ToLower(n); l != n {
			out := slices.Clone(names)
			out[i] = l
			for j := i + 1; j < len(out); j++ {
				out[j] = strings.ToLower(out[j])
			}
			return out
		}
	}
	return names
}
