package api

import (
	"errors"
	"net/http"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// statusOf is the one table that maps error codes to HTTP statuses
// (spec/control-plane.md §3; ServiceQuotaExceededException really is 402).
var statusOf = map[chat.Code]int{
	chat.CodeValidation:                 http.StatusBadRequest,
	chat.CodeAccessDenied:               http.StatusForbidden,
	chat.CodeResourceNotFound:           http.StatusNotFound,
	chat.CodeConflict:                   http.StatusConflict,
	chat.CodeServiceQuotaExceeded:       http.StatusPaymentRequired,
	chat.CodeThrottling:                 http.StatusTooManyRequests,
	chat.CodeInternal:                   http.StatusInternalServerError,
	chat.CodeServiceUnavailable:         http.StatusServiceUnavailable,
	chat.CodeMissingAuthenticationToken: http.StatusForbidden,
	chat.CodeIncompleteSignature:        http.StatusForbidden,
	chat.CodeInvalidSignature:           http.StatusForbidden,
	chat.CodeUnrecognizedClient:         http.StatusForbidden,
}

// errorBody is the restJson1 error document. Every SDK reads the code from the
// x-amzn-ErrorType header or "__type" and the text from "message"; the other
// members are the modeled ones of each error type. Strings are never null:
// aws-sdk-go-v2 type-asserts them.
type errorBody struct {
	Type         string            `json:"__type"`
	Message      string            `json:"message"`
	Reason       string            `json:"reason,omitempty"`
	FieldList    []chat.FieldError `json:"fieldList,omitempty"`
	ResourceID   string            `json:"resourceId,omitempty"`
	ResourceType string            `json:"resourceType,omitempty"`
	Limit        *int              `json:"limit,omitempty"`
}

// writeError answers with err as a typed error. Errors that are not *chat.Error
// are internal faults: they are logged with the request ID and the client gets
// a generic InternalServerException, never the internal text.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ce *chat.Error
	if !errors.As(err, &ce) {
		h.log.ErrorContext(r.Context(), "internal error", "requestId", w.Header().Get(headerRequestID), "method", r.Method, "path", r.URL.Path, "err", err)
		ce = &chat.Error{Code: chat.CodeInternal, Message: "internal server error"}
	}
	status, ok := statusOf[ce.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 && ce.Code != chat.CodeInternal {
		// A typed server fault (the store unavailable) still carries its
		// cause, which only the log may see.
		h.log.ErrorContext(r.Context(), "request failed", "requestId", w.Header().Get(headerRequestID), "method", r.Method, "path", r.URL.Path, "code", ce.Code, "err", err)
	}
	body := errorBody{
		Type:         string(ce.Code),
		Message:      ce.Message,
		Reason:       ce.Reason,
		FieldList:    ce.Fields,
		ResourceID:   ce.ResourceID,
		ResourceType: ce.ResourceType,
	}
	switch ce.Code {
	case chat.CodeServiceQuotaExceeded, chat.CodeThrottling:
		limit := ce.Limit
		body.Limit = &limit
	}
	if status < 500 {
		h.log.DebugContext(r.Context(), "request refused", "requestId", w.Header().Get(headerRequestID), "path", r.URL.Path, "code", ce.Code, "message", ce.Message)
	}
	w.Header().Set("x-amzn-ErrorType", string(ce.Code))
	writeJSON(w, status, body)
}
