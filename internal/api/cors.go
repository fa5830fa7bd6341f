package api

import "net/http"

// CORS lets browser apps call the control plane with @aws-sdk/client-ivschat.
// The header lists come from the model's smithy.api#cors trait plus the SigV4
// headers browsers must be allowed to send.
const (
	corsAllowHeaders  = "Authorization, Content-Type, X-Amz-Date, X-Amz-Security-Token, X-Amz-Content-Sha256, X-Amz-User-Agent, X-Api-Key, amz-sdk-invocation-id, amz-sdk-request"
	corsExposeHeaders = "x-amzn-errortype, x-amzn-requestid, x-amzn-errormessage, x-amzn-trace-id, x-amz-apigw-id, date"
	corsAllowMethods  = "GET, POST, DELETE, OPTIONS"
)

func setCORSHeaders(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
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
