// Package console serves the web console: the static single-page app built
// from console/ (TypeScript + Preact) into dist/ and embedded in the binary,
// so the console works offline and needs no Node at build time.
//
// The console is a client of the public API like any other: it signs every
// call with the operator's access key in the browser. This package serves
// files only and has no authority of its own.
package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is where the console lives on the main listener.
const Prefix = "/console/"

// ContentSecurityPolicy allows only the console's own files and its calls to
// the API and chat WebSocket of the same server; no inline script or style,
// no framing (clickjacking of the moderation controls).
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'"

//go:embed dist
var dist embed.FS

// asset is one file, ready to serve: the identity and gzip bodies are made
// once, at start, so a request costs no compression.
type asset struct {
	contentType string
	body        []byte
	gz          []byte // nil when gzip does not make it smaller
	etag        string // strong ETag of body; the gzip variant adds "-gz"
	// version is what the build puts in index.html's ?v= query for this
	// file: the first 12 hex digits of its SHA-256. A request carrying it
	// may be cached for good, since a different file has another version.
	version string
}

// Handler serves the console. Build it with New.
type Handler struct {
	assets map[string]*asset // by name under dist/, "index.html", "app.js", ...
}

// New loads and compresses the embedded files.
func New() (*Handler, error) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, err
	}
	return newHandler(sub)
}

func newHandler(files fs.FS) (*Handler, error) {
	h := &Handler{assets: make(map[string]*asset)}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(name, ".map") {
			// Source maps are for development builds; not served.
			return nil
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		a, err := newAsset(name, body)
		if err != nil {
			return err
		}
		h.assets[name] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if h.assets["index.html"] == nil {
		return nil, fmt.Errorf("console: the embedded files lack index.html")
	}
	return h, nil
}

func newAsset(name string, body []byte) (*asset, error) {
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	// The system's MIME table may lack a charset; text the console ships
	// is UTF-8.
	if strings.HasPrefix(ct, "text/") && !strings.Contains(ct, "charset") {
		ct += "; charset=utf-8"
	}
	if ext := path.Ext(name); ext == ".js" || ext == ".mjs" {
		ct = "text/javascript; charset=utf-8"
	}
	sum := sha256.Sum256(body)
	digest := hex.EncodeToString(sum[:])
	a := &asset{contentType: ct, body: body, etag: `"` + digest[:32] + `"`, version: digest[:12]}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	zw.Write(body)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() < len(body) {
		a.gz = buf.Bytes()
	}
	return a, nil
}

// ServeHTTP serves /console (a redirect), /console/ (the app) and the
// files under it. It expects only paths with those prefixes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		target := Prefix
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == "" {
		name = "index.html"
	}
	a := h.assets[name]
	if a == nil {
		// The app routes with the URL's fragment (#/rooms), so any other
		// path is a mistake, not a page of the app.
		http.NotFound(w, r)
		return
	}
	h.serveAsset(w, r, name, a)
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, name string, a *asset) {
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	switch {
	case name == "index.html":
		// Always revalidated (cheap with the ETag): it names the current
		// versions of the other files, so an upgraded server is picked up
		// on the next load.
		hdr.Set("Cache-Control", "no-cache")
	case r.URL.Query().Get("v") == a.version:
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	default:
		hdr.Set("Cache-Control", "no-cache")
	}
	body, etag := a.body, a.etag
	if a.gz != nil {
		hdr.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body = a.gz
			etag = strings.TrimSuffix(a.etag, `"`) + `-gz"`
			hdr.Set("Content-Encoding", "gzip")
		}
	}
	hdr.Set("ETag", etag)
	// ServeContent answers If-None-Match (304), HEAD and ranges; the zero
	// time leaves Last-Modified out, the ETag is the validator.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// acceptsGzip reports whether an Accept-Encoding value admits gzip: listed
// (or "*") with a q-value that is not zero.
func acceptsGzip(header string) bool {
	star := false
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		ok := qNonZero(params)
		if coding == "gzip" {
			return ok
		}
		star = ok
	}
	return star
}

// qNonZero reads the q parameter of one Accept-Encoding element; absent
// means 1.
func qNonZero(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			v = strings.TrimSpace(v)
			// q is at most three decimals: "0", "0.0", "0.000" are zero.
			return strings.Trim(strings.TrimPrefix(v, "0"), ".0") != "" || strings.HasPrefix(v, "1")
		}
	}
	return true
}
