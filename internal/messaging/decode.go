package messaging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Client actions (spec §3).
const (
	actionSendMessage    = "SEND_MESSAGE"
	actionDeleteMessage  = "DELETE_MESSAGE"
	actionDisconnectUser = "DISCONNECT_USER"
)

// clientRequest is a decoded client frame. Keys are matched
// case-insensitively and unknown keys are ignored: encoding/json does exactly
// that, and a third-party client that sends lowercase keys worked against the
// real service (spec §3).
type clientRequest struct {
	Action     string            `json:"Action"`
	RequestID  string            `json:"RequestId"`
	Content    *string           `json:"Content"`
	Attributes map[string]string `json:"Attributes"`
	ID         string            `json:"Id"`
	UserID     string            `json:"UserId"`
	Reason     string            `json:"Reason"`
}

// requestError is a client error that is answered with an ERROR frame; the
// connection stays open.
type requestError struct {
	code int
	msg  string
}

func (e *requestError) Error() string { return fmt.Sprintf("%d %s", e.code, e.msg) }

func badRequest(format string, args ...any) *requestError {
	return &requestError{code: 400, msg: fmt.Sprintf(format, args...)}
}

// decodeClientFrame parses one client text frame. It always returns the
// request as far as it could be read, so that an ERROR can carry the
// RequestId of a request that is otherwise malformed (the JS SDK matches
// errors to pending promises only by RequestId).
func decodeClientFrame(payload []byte) (clientRequest, *requestError) {
	var req clientRequest
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return req, badRequest("request must be a JSON object")
	}
	// encoding/json keeps filling the other fields after a type mismatch, so
	// a string RequestId survives a wrongly typed Attributes value.
	err := json.Unmarshal(trimmed, &req)
	if err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			field := typeErr.Field
			if field == "" {
				field = "request"
			}
			return req, badRequest("invalid value for %s: expected %s", field, jsonTypeName(typeErr))
		}
		// A syntax error leaves the struct partly filled in an unspecified
		// way; only trust nothing.
		return clientRequest{}, badRequest("request is not valid JSON")
	}
	if req.Action == "" {
		return req, badRequest("Action is required (SEND_MESSAGE, DELETE_MESSAGE or DISCONNECT_USER)")
	}
	switch req.Action {
	case actionSendMessage, actionDeleteMessage, actionDisconnectUser:
	default:
		return req, badRequest("unknown Action %q: expected SEND_MESSAGE, DELETE_MESSAGE or DISCONNECT_USER", truncate(req.Action, 64))
	}
	return req, nil
}

func jsonTypeName(e *json.UnmarshalTypeError) string {
	if e.Type == nil {
		return "a different type"
	}
	switch e.Type.Kind().String() {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object of strings"
	}
	return e.Type.String()
}

// truncate shortens s for inclusion in an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
