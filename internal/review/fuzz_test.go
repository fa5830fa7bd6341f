package review

import (
	"encoding/json"
	"errors"
	"maps"
	"testing"
	"unicode/utf8"
)

// FuzzParseResponse checks the answer parser's contract on arbitrary bytes:
// it never panics, fails only with an invalid-answer error, accepts only
// valid JSON, and an ALLOW never exceeds the length limit nor invents
// content the answer did not carry.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"ReviewResult":"ALLOW"}`,
		`{"ReviewResult":"DENY"}`,
		`{"ReviewResult":"ALLOW","Content":"hi","Attributes":{"a":"b"}}`,
		`{"ReviewResult":"ALLOW","Content":null,"Attributes":null}`,
		`{"ReviewResult":"ALLOW","Attributes":{"a":1}}`,
		`{"reviewresult":"ALLOW","content":"ééé"}`,
		`{"ReviewResult":"MAYBE"}`,
		`null`, `[]`, `""`, `{}`, `{"ReviewResult":"ALLOW"} x`,
		"{\"ReviewResult\":\"ALLOW\",\"Content\":\"\xff\"}",
	} {
		f.Add([]byte(s), 5)
	}
	f.Fuzz(func(t *testing.T, b []byte, maxLen int) {
		req := &Request{Content: "orig", Attributes: map[string]string{"o": "1"}, MaxContentLength: maxLen}
		res, err := parseResponse(b, req)
		if err != nil {
			var inv *invalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error %v is not an invalid-answer error", err)
			}
			if res.Allow {
				t.Fatal("an error came with an ALLOW")
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if res.Fallback {
			t.Fatal("the parser set Fallback")
		}
		if !res.Allow {
			if res.Content != "" || res.Attributes != nil {
				t.Fatalf("DENY carries content: %+v", res)
			}
			return
		}
		if maxLen > 0 && utf8.RuneCountInString(res.Content) > maxLen {
			t.Fatalf("content of %d characters accepted with a limit of %d", utf8.RuneCountInString(res.Content), maxLen)
		}
		var w map[string]any
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatalf("accepted %q that does not decode to an object: %v", b, err)
		}
		// Content is either the original or a string from the answer.
		if res.Content != req.Content {
			found := false
			for _, v := range w {
				if s, ok := v.(string); ok && s == res.Content {
					found = true
				}
			}
			if !found {
				t.Fatalf("content %q appears nowhere in %q", res.Content, b)
			}
		}
		// Attributes are the original or a decoded object, never nil: the
		// frame encoder must always have an object to write.
		if res.Attributes == nil {
			t.Fatalf("nil attributes from %q", b)
		}
		if !maps.Equal(res.Attributes, req.Attributes) && len(w) == 0 {
			t.Fatalf("attributes %v from an empty object %q", res.Attributes, b)
		}
	})
}
