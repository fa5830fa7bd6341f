package sqlstore

import (
	"encoding/json"
	"fmt"
	"maps"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// mergeTags returns cur with add merged in, or the documented validation error
// when the result would hold more than chat.MaxTagsPerResource tags. cur is not
// modified, so a refused merge leaves the caller's state untouched.
func mergeTags(cur, add map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(cur)+len(add))
	maps.Copy(out, cur)
	maps.Copy(out, add)
	if len(out) > chat.MaxTagsPerResource {
		return nil, chat.Validation(chat.FieldError{
			Name:    "tags",
			Message: fmt.Sprintf("a resource can have at most %d tags; it would have %d", chat.MaxTagsPerResource, len(out)),
		})
	}
	return out, nil
}

// removeTags returns cur without keys; absent keys are ignored.
func removeTags(cur map[string]string, keys []string) map[string]string {
	out := maps.Clone(cur)
	if out == nil {
		out = map[string]string{}
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

// encodeTags is the JSON form of tags stored in both databases. A nil map is
// stored as {} so that decoding never yields nil.
func encodeTags(tags map[string]string) ([]byte, error) {
	if tags == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(tags)
	if err != nil {
		return nil, fmt.Errorf("encode tags: %w", err)
	}
	return b, nil
}

// decodeTags is the inverse of encodeTags; it never returns a nil map.
func decodeTags(b []byte) (map[string]string, error) {
	tags := map[string]string{}
	if len(b) == 0 {
		return tags, nil
	}
	if err := json.Unmarshal(b, &tags); err != nil {
		return nil, fmt.Errorf("decode tags: %w", err)
	}
	if tags == nil { // the JSON literal null
		tags = map[string]string{}
	}
	return tags, nil
}

// firstMissing returns the first of want (in the caller's order) that is not in
// have, and whether there is one. Stores use it to name the missing logging
// configuration the way the client listed it.
func firstMissing(want []string, have map[string]bool) (string, bool) {
	for _, id := range want {
		if !have[id] {
			return id, true
		}
	}
	return "", false
}
