package api

import (
	"regexp"
	"strconv"
)

// patLambdaARNOrURL accepts the model's LambdaArn (empty or a Lambda function
// ARN) and, as a documented extension, an http(s) webhook URL: the SDKs pass
// the string through unchanged.
var patLambdaARNOrURL = regexp.MustCompile(`^$|^arn:aws:lambda:[a-z0-9-]+:[0-9]{12}:function:.+|^https?://[^\s]+$`)

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefOr(n *int, def int) int {
	if n == nil {
		return def
	}
	return *n
}

func itoa(n int) string { return strconv.Itoa(n) }
