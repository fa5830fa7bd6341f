package sigv4

import (
	"strings"
)

// Algorithm is the only signing algorithm we accept. SigV4a (ECDSA) needs
// asymmetric keys derived from the secret, which no IVS Chat client uses.
const Algorithm = "AWS4-HMAC-SHA256"

// scopeTerminator ends every SigV4 credential scope.
const scopeTerminator = "aws4_request"

// Authorization is a parsed SigV4 Authorization header:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20240102/us-west-2/ivschat/aws4_request, SignedHeaders=host;x-amz-date, Signature=<64 hex>
type Authorization struct {
	AccessKeyID string
	// Date is the scope date, YYYYMMDD.
	Date    string
	Region  string
	Service string
	// SignedHeaders are the header names in the order the client listed them.
	SignedHeaders []string
	Signature     string
}

// Scope is the credential scope without the access key ID, as it appears in
// the string to sign.
func (a Authorization) Scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/" + scopeTerminator
}

// String formats a as an Authorization header value that ParseAuthorization
// turns back into a.
func (a Authorization) String() string {
	return Algorithm + " Credential=" + a.AccessKeyID + "/" + a.Scope() +
		", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") +
		", Signature=" + a.Signature
}

// ParseAuthorization parses a SigV4 Authorization header value. Every failure
// is an IncompleteSignatureException, as with AWS: the header is not even well
// formed enough to compute a signature.
//
// It is deliberately tolerant where real clients differ (", " or "," between
// parameters, any parameter order) and strict where a sloppy parse could let
// two different headers mean the same thing (duplicate parameters).
func ParseAuthorization(header string) (Authorization, error) {
	var a Authorization
	alg, rest := trimBlank(header), ""
	if i := strings.IndexAny(alg, " \t"); i >= 0 {
		alg, rest = alg[:i], alg[i+1:]
	} else {
		if alg == Algorithm {
			return a, incomplete("Authorization header requires 'Credential' parameter. " +
				"Authorization header requires 'Signature' parameter. " +
				"Authorization header requires 'SignedHeaders' parameter. Authorization=" + header)
		}
		return a, incomplete("Authorization header is not a valid AWS Signature Version 4 header: '" + header + "'")
	}
	if alg != Algorithm {
		return a, incomplete("Unsupported AWS 'algorithm': '" + alg + "' (only " + Algorithm + " is supported)")
	}

	var credential, signedHeaders, signature string
	var haveCred, haveSigned, haveSig bool
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		part = trimBlank(part)
		if part == "" {
			continue
		}
		key, value, ok := strings.Cut(part, "=")
		if !ok {
			return a, incomplete("'" + part + "' not a valid key=value pair (missing equal-sign) in Authorization header: '" + header + "'")
		}
		key = trimBlank(key)
		value = trimBlank(value)
		var dst *string
		var seen *bool
		switch key {
		case "Credential":
			dst, seen = &credential, &haveCred
		case "SignedHeaders":
			dst, seen = &signedHeaders, &haveSigned
		case "Signature":
			dst, seen = &signature, &haveSig
		default:
			// AWS ignores parameters it does not know; so do we.
			continue
		}
		if *seen {
			return a, incomplete("Authorization header has a duplicate '" + key + "' parameter: '" + header + "'")
		}
		*dst, *seen = value, true
	}

	var missing []string
	if credential == "" {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if signature == "" {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if signedHeaders == "" {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	if missing != nil {
		return a, incomplete(strings.Join(missing, " ") + " Authorization=" + header)
	}

	if err := parseCredential(credential, &a); err != nil {
		return Authorization{}, err
	}
	if !validToken(signature) {
		return Authorization{}, incomplete("Signature must consist of printable characters without spaces or commas: '" + signature + "'")
	}
	a.Signature = signature

	a.SignedHeaders = strings.Split(signedHeaders, ";")
	for _, h := range a.SignedHeaders {
		if !validHeaderName(h) {
			return Authorization{}, incomplete("SignedHeaders contains an invalid header name '" + h + "': '" + signedHeaders + "'")
		}
	}
	return a, nil
}

// parseCredential splits AKID/date/region/service/aws4_request into a.
func parseCredential(cred string, a *Authorization) error {
	var parts [5]string
	rest := cred
	n := 0
	for n < len(parts) {
		var ok bool
		parts[n], rest, ok = strings.Cut(rest, "/")
		n++
		if !ok {
			break
		}
	}
	if n != len(parts) || rest != "" {
		return incomplete("Credential should have exactly 5 slash-separated parts " +
			"(access key ID/date/region/service/aws4_request), got '" + cred + "'")
	}
	akid, date, region, service, term := parts[0], parts[1], parts[2], parts[3], parts[4]
	switch {
	case akid == "":
		return incomplete("Credential has an empty access key ID: '" + cred + "'")
	case !isScopeDate(date):
		return incomplete("Credential should be scoped to a valid date in YYYYMMDD format, not '" + date + "'")
	case region == "":
		return incomplete("Credential should be scoped to a valid region, not ''.")
	case service == "":
		return incomplete("Credential should be scoped to a valid service, not ''.")
	case term != scopeTerminator:
		return incomplete("Credential should be scoped with a valid terminator: '" + scopeTerminator + "', not '" + term + "'.")
	}
	for _, p := range parts[:4] {
		if !validToken(p) {
			return incomplete("Credential contains invalid characters: '" + cred + "'")
		}
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = akid, date, region, service
	return nil
}

func isScopeDate(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validToken accepts visible ASCII except the separators of the header. Such
// values survive String/ParseAuthorization unchanged and cannot smuggle
// whitespace or control bytes into error messages or logs.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ',' || c == ';' || c == '/' || c == '=' {
			return false
		}
	}
	return true
}

// tokenChars marks the RFC 9110 token characters, the only ones an HTTP
// header name can have.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

// trimBlank trims spaces and tabs; strings.Trim would build a cutset on
// every call of this hot path.
func trimBlank(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
