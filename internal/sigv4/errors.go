package sigv4

import "github.com/ivschatd/ivschatd/internal/chat"

// Messages fixed by AWS; clients and humans search for these exact strings.
const (
	msgMissingToken     = "Missing Authentication Token"
	msgUnrecognized     = "The security token included in the request is invalid."
	msgSignatureInvalid = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

func incomplete(msg string) *chat.Error {
	return &chat.Error{Code: chat.CodeIncompleteSignature, Message: msg}
}

func invalid(msg string) *chat.Error {
	return &chat.Error{Code: chat.CodeInvalidSignature, Message: msg}
}
