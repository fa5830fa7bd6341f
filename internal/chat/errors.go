package chat

import (
	"errors"
	"fmt"
	"strings"
)

// Code is the name of a modeled IVS Chat error. The string value is exactly what
// travels on the wire in the x-amzn-ErrorType header and the "__type" member, so
// every SDK maps it to its typed error.
type Code string

// The modeled errors of the IVS Chat API (see spec/control-plane.md §3).
const (
	CodeValidation           Code = "ValidationException"
	CodeAccessDenied         Code = "AccessDeniedException"
	CodeResourceNotFound     Code = "ResourceNotFoundException"
	CodeConflict             Code = "ConflictException"
	CodeServiceQuotaExceeded Code = "ServiceQuotaExceededException"
	CodeThrottling           Code = "ThrottlingException"
	CodeInternal             Code = "InternalServerException"

	// CodeServiceUnavailable is not in the ivschat model. It is what AWS
	// services answer (HTTP 503) when a dependency is down for a while:
	// every SDK retries a 503 with backoff, and unlike the modeled 500 it
	// tells operators and clients "try again later", not "bug".
	CodeServiceUnavailable Code = "ServiceUnavailableException"

	// Authentication failures use the codes AWS itself answers with (HTTP 403);
	// they are not in the ivschat model, so SDKs surface them as generic API
	// errors carrying these codes, exactly as against AWS.
	CodeMissingAuthenticationToken Code = "MissingAuthenticationTokenException"
	CodeIncompleteSignature        Code = "IncompleteSignatureException"
	CodeInvalidSignature           Code = "InvalidSignatureException"
	CodeUnrecognizedClient         Code = "UnrecognizedClientException"
)

// Validation reasons (enum ValidationExceptionReason in the model).
const (
	ReasonUnknownOperation      = "UNKNOWN_OPERATION"
	ReasonFieldValidationFailed = "FIELD_VALIDATION_FAILED"
	ReasonOther                 = "OTHER"
)

// ResourceType is the value of the resourceType member of resource errors. The
// model's enum has the single value ROOM; we also use it for logging
// configurations because SDK enums are open and ROOM is what the model allows
// (README, "Compatibility notes").
const ResourceTypeRoom = "ROOM"

// FieldError names one input member that failed validation.
type FieldError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

// Error is the single application error type. Every failure that reaches a
// client is (or is wrapped into) an *Error, and the api package maps its Code to
// an HTTP status in one table.
type Error struct {
	Code    Code
	Message string

	// ValidationException members.
	Reason string
	Fields []FieldError

	// Resource error members (not found, conflict, quota, throttling).
	ResourceID   string
	ResourceType string
	Limit        int
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return fmt.Sprintf("%s: %s", e.Code, e.Message)
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Name + " " + f.Message
	}
	return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, strings.Join(parts, "; "))
}

// ErrorCode returns the Code of err if it is or wraps an *Error, else CodeInternal.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// NotFound reports that the resource with the given ID does not exist.
func NotFound(kind Kind, id string) *Error {
	return &Error{Code: CodeResourceNotFound, Message: kind.Title() + " not found: " + id, ResourceID: id, ResourceType: ResourceTypeRoom}
}

// Conflict reports that a resource is in a state that forbids the operation.
func Conflict(id, msg string) *Error {
	return &Error{Code: CodeConflict, Message: msg, ResourceID: id, ResourceType: ResourceTypeRoom}
}

// QuotaExceeded reports that creating one more resource of kind would pass limit.
func QuotaExceeded(kind Kind, limit int) *Error {
	return &Error{
		Code:         CodeServiceQuotaExceeded,
		Message:      fmt.Sprintf("quota exceeded: at most %d %ss per account", limit, kind.Noun()),
		ResourceID:   "quota",
		ResourceType: ResourceTypeRoom,
		Limit:        limit,
	}
}

// Validation builds a ValidationException listing every offending field.
func Validation(fields ...FieldError) *Error {
	msg := "1 validation error detected"
	if len(fields) != 1 {
		msg = fmt.Sprintf("%d validation errors detected", len(fields))
	}
	return &Error{Code: CodeValidation, Message: msg, Reason: ReasonFieldValidationFailed, Fields: fields}
}

// BadRequest is a ValidationException that is not about one field (bad JSON,
// unknown operation, ...).
func BadRequest(reason, msg string) *Error {
	return &Error{Code: CodeValidation, Message: msg, Reason: reason}
}

// Unavailable reports that the request could not be served now because a
// dependency (the database) is unreachable; a retry later may succeed.
func Unavailable(msg string) *Error {
	return &Error{Code: CodeServiceUnavailable, Message: msg}
}

// AccessDenied refuses a request whose caller is not allowed to make it.
func AccessDenied(msg string) *Error {
	return &Error{Code: CodeAccessDenied, Message: msg}
}
