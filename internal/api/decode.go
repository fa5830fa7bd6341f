package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// decodeBody decodes a restJson1 request body into v. An empty body is an empty
// input (R paws sends none when no member is set). Unknown members are ignored,
// as restJson1 requires; a member of the wrong JSON type is a
// ValidationException naming that member; anything that is not one JSON
// object is a ValidationException too.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return chat.BadRequest(chat.ReasonOther, "request body must be a single JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return chat.BadRequest(chat.ReasonOther, "request body must be a JSON object")
		}
		return chat.Validation(chat.FieldError{Name: typeErr.Field, Message: "must be " + jsonKind(typeErr.Type.Kind().String()) + ", got " + typeErr.Value})
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) || errors.Is(err, io.ErrUnexpectedEOF) {
		return chat.BadRequest(chat.ReasonOther, "request body is not valid JSON: "+err.Error())
	}
	return chat.BadRequest(chat.ReasonOther, "cannot decode request body: "+err.Error())
}

// jsonKind names a Go kind the way a JSON user thinks of it.
func jsonKind(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case kind == "string":
		return "a string"
	case kind == "map", kind == "struct":
		return "an object"
	case kind == "slice":
		return "an array"
	case kind == "bool":
		return "a boolean"
	}
	return "a " + kind
}
