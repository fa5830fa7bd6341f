package review

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// Review results a handler may return.
const (
	resultAllow = "ALLOW"
	resultDeny  = "DENY"
)

// wireResponse is a handler's answer. Pointers tell an absent or null field
// from an empty one; map[string]string makes a non-string attribute value a
// decoding error.
type wireResponse struct {
	ReviewResult *string           `json:"ReviewResult"`
	Content      *string           `json:"Content"`
	Attributes   map[string]string `json:"Attributes"`
}

// parseResponse turns a handler's answer into a decision for req; an error
// is always an *invalidError.
func parseResponse(b []byte, req *Request) (Result, error) {
	var w wireResponse
	// Unmarshal rejects trailing data, so the answer must be exactly one
	// JSON value; a top-level null decodes to nothing and fails below.
	if err := json.Unmarshal(b, &w); err != nil {
		return Result{}, invalid("%v", err)
	}
	if w.ReviewResult == nil {
		return Result{}, invalid("ReviewResult is missing")
	}
	switch *w.ReviewResult {
	case resultDeny:
		return Result{}, nil
	case resultAllow:
	default:
		return Result{}, invalid("unknown ReviewResult %q", *w.ReviewResult)
	}
	res := Result{Allow: true, Content: req.Content, Attributes: req.Attributes}
	if w.Content != nil {
		// Re-validated (spec §7 leaves it open): a handler must not be a way
		// around the room's limit, and clients size their UI by it.
		if n := utf8.RuneCountInString(*w.Content); req.MaxContentLength > 0 && n > req.MaxContentLength {
			return Result{}, invalid("Content has %d characters, the room allows %d", n, req.MaxContentLength)
		}
		res.Content = *w.Content
	}
	if w.Attributes != nil {
		// The limit of client attributes: a handler must not broadcast
		// what no client could send.
		if n := chat.AttributesBytes(w.Attributes); n > chat.MaxAttributesBytes {
			return Result{}, invalid("Attributes have %d bytes (keys and values), the limit is %d", n, chat.MaxAttributesBytes)
		}
		res.Attributes = w.Attributes
	}
	return res, nil
}
