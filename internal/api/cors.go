package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// CORS lets browser apps call the control plane with @aws-sdk/client-ivschat.
// The header lists come from the model's smithy.api#cors trait plus the SigV4
// headers browsers must be allowed to send.
const (
	corsAllowHeaders  = "Authorization, Content-Type, X-Amz-Date, X-Amz-Security-Token, X-Amz-Content-Sha256, X-Amz-User-Agent, X-Api-Key, amz-sdk-invocation-id, amz-sdk-request"
	corsExposeHeaders = "x-amzn-errortype, x-amzn-requestid, x-amzn-errormessage, x-amzn-trace-id, x-amz-apigw-id, date"
	corsAllowMethods  = "GET, POST, DELETE, OPTIONS"
)

// simpleContentTypes are the CORS-safelisted Content-Types: a web page can
// send a POST with one of them to any address without a preflight, and the
// browser delivers it even though the page may not read the answer.
var simpleContentTypes = map[string]bool{
	"text/plain":                        true,
	"application/x-www-form-urlencoded": true,
	"multipart/form-data":               true,
}

// cors sets the CORS response headers and decides whether a browser may have
// sent the request on behalf of a foreign web page.
//
// With authentication on, any origin is reflected: the SigV4 signature is
// the protection, and browser apps built on the AWS SDK need CORS. Without
// it (--insecure-no-auth) any page the operator visits could drive the server
// (create rooms, mint tokens), so only the server's own origin is reflected,
// a request from another origin is refused, and so is a request with a
// safelisted Content-Type, which a page can send without a preflight (a
// no-cors fetch or a form post). Clients that send no Content-Type (paws) or
// application/json / application/x-amz-json-1.1 are not affected.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) error {
	insecure := h.auth == nil
	if origin := r.Header.Get("Origin"); origin != "" {
		if insecure && !sameOrigin(origin, r.Host) {
			return insecureRefusal("a request from the web origin " + origin + " is refused")
		}
		hdr := w.Header()
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Add("Vary", "Origin")
		hdr.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	}
	if insecure && r.Method != http.MethodOptions {
		if mt := mediaType(r.Header.Get("Content-Type")); simpleContentTypes[mt] {
			return insecureRefusal("a request with Content-Type " + mt + " (which any web page can send) is refused; send application/json or no Content-Type")
		}
	}
	return nil
}

func insecureRefusal(what string) error {
	return chat.AccessDenied("authentication is off (--insecure-no-auth), so " + what)
}

// mediaType is the lower-case type/subtype of a Content-Type value, without
// parameters, as browsers compare it against the safelist.
func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// sameOrigin reports whether a browser Origin names the host:port the
// request was sent to, i.e. a page served by this very address.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false // includes "null" (sandboxed frames, file://)
	}
	return strings.EqualFold(u.Host, host)
}

// servePreflight answers an OPTIONS preflight. It needs no signature: browsers
// never sign preflights.
func servePreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	if requested := r.Header.Get("Access-Control-Request-Headers"); requested != "" {
		// Echoing the requested headers keeps newer SDK headers working.
		h.Set("Access-Control-Allow-Headers", requested)
	} else {
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	}
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}
