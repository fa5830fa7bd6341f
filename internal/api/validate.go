package api

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// Patterns of the Smithy model. Lengths are counted in Unicode code points, as
// Smithy's length trait specifies for strings.
var (
	patName           = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)
	patAlnum          = regexp.MustCompile(`^[a-zA-Z0-9]+$`)
	patBucketName     = regexp.MustCompile(`^[a-z0-9-.]+$`)
	patLogGroupName   = regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]+$`)
	patDeliveryStream = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
)

// validator collects every field error of one request so the client learns
// about all of them at once, as fieldList allows.
type validator struct {
	fields []chat.FieldError
}

func (v *validator) add(name, format string, args ...any) {
	v.fields = append(v.fields, chat.FieldError{Name: name, Message: fmt.Sprintf(format, args...)})
}

// err returns the ValidationException for the collected fields, or nil.
func (v *validator) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return chat.Validation(v.fields...)
}

func (v *validator) required(name string, present bool) bool {
	if !present {
		v.add(name, "is required")
	}
	return present
}

// length checks min <= code points <= max (max < 0: unbounded).
func (v *validator) length(name, s string, min, max int) bool {
	n := utf8.RuneCountInString(s)
	if n < min || (max >= 0 && n > max) {
		switch {
		case min == max:
			v.add(name, "must be exactly %d characters long", min)
		case max < 0:
			v.add(name, "must be at least %d characters long", min)
		default:
			v.add(name, "must be between %d and %d characters long", min, max)
		}
		return false
	}
	return true
}

func (v *validator) pattern(name, s string, re *regexp.Regexp) bool {
	if !re.MatchString(s) {
		v.add(name, "must match the pattern %s", re.String())
		return false
	}
	return true
}

// str validates an optional string member: nil means absent.
func (v *validator) str(name string, s *string, required bool, min, max int, re *regexp.Regexp) {
	if s == nil {
		if required {
			v.add(name, "is required")
		}
		return
	}
	if v.length(name, *s, min, max) && re != nil {
		v.pattern(name, *s, re)
	}
}

func (v *validator) intRange(name string, n *int, min, max int) {
	if n != nil && (*n < min || *n > max) {
		v.add(name, "must be between %d and %d", min, max)
	}
}

func (v *validator) enum(name, s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	v.add(name, "must be one of %s", strings.Join(allowed, ", "))
	return false
}

// tags checks a Tags map: at most 50 entries, keys 1-128 (not starting with
// the prefix aws:, which AWS reserves), values 0-256.
// Field names of entries use the key so the client can find the culprit.
func (v *validator) tags(name string, tags map[string]string) {
	if len(tags) > chat.MaxTagsPerResource {
		v.add(name, "must have at most %d entries", chat.MaxTagsPerResource)
	}
	for _, k := range sortedKeys(tags) {
		if n := utf8.RuneCountInString(k); n < 1 || n > 128 {
			v.add(name, "keys must be between 1 and 128 characters long")
			continue
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			v.add(name, "keys must not start with the reserved prefix aws:")
			continue
		}
		if utf8.RuneCountInString(tags[k]) > 256 {
			v.add(name+"."+k, "must be at most 256 characters long")
		}
	}
}

// attributes checks a string map against the documented 1 KB limit (UTF-8 bytes
// of all keys and values).
func (v *validator) attributes(name string, attrs map[string]string) {
	if size := chat.AttributesBytes(attrs); size > chat.MaxAttributesBytes {
		v.add(name, "must be at most %d bytes in total (keys and values), got %d", chat.MaxAttributesBytes, size)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
