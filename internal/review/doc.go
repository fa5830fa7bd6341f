// Package review invokes a room's message review handler (spec/messaging.md
// §7) and turns its answer into a delivery decision.
//
// Every SEND_MESSAGE of a room that has a handler is reviewed synchronously
// before anyone sees it. The handler receives
//
//	{"Content":"…","MessageId":"…","RoomArn":"…","Attributes":{…},
//	 "Sender":{"UserId":"…","Attributes":{…},"Ip":"…"}}
//
// (Attributes are always JSON objects, never null) and answers
//
//	{"ReviewResult":"ALLOW"|"DENY","Content":"…","Attributes":{…}}
//
// where Content and Attributes are optional and, when absent or null, keep
// the originals. Anything else — a missing or unknown ReviewResult, a body
// that is not one JSON object, a field of the wrong type, an attribute value
// that is not a string, replacement Content longer than the room's maximum
// message length, replacement Attributes over the 1 KB that clients may send
// (chat.MaxAttributesBytes: UTF-8 bytes of keys and values), an HTTP status outside 2xx, a Lambda FunctionError, a
// transport error or an answer later than Options.Timeout (200 ms by default,
// the real service's quota) — applies the handler's fallbackResult (ALLOW,
// the default, delivers the original message; DENY rejects it). Review never
// fails: the caller always gets a decision. Field names are matched
// case-insensitively (encoding/json), which accepts what the real service
// would reject only in letter case.
//
// # Handler URIs
//
// A Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME, as in
// AWS) is invoked with the Lambda Invoke API (RequestResponse) through
// aws-sdk-go-v2, at Options.Lambda.Endpoint (empty: the AWS endpoint of the
// region) with the configured static credentials (empty: the SDK's default
// credential chain). The region is Options.Lambda.Region, or the ARN's. The
// SDK's retries are off: a retry could not finish within the timeout and
// would run the function twice.
//
// An http:// or https:// URL is an extension of this server (the AWS SDKs
// pass the uri string through unchanged, so CreateRoom accepts it): the same
// JSON is POSTed with Content-Type application/json. Redirects are not
// followed (a 3xx is a handler error), so a handler cannot bounce the
// message, and the signature, to another host.
//
// Whoever creates a room chooses the URL, so webhooks are held to a target
// policy (package egress): link-local addresses — the cloud metadata
// services — are never dialed, however the URL spells them or whatever its
// name resolves to, and Options.WebhookAllow can restrict targets further.
// CheckURI refuses, when a room is created or updated, the URLs that can be
// judged by what they say; a target refused at call time applies the
// fallback with ReasonTargetRefused. Webhooks ignore the environment's
// proxy settings, which would hide the target from the dialer.
//
// # Webhook signatures
//
// When Options.WebhookSecret is set, every webhook request carries
//
//	X-Ivschatd-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// where <body> is the exact request body bytes. To verify it, a receiver:
//
//  1. reads the raw body before parsing it (re-encoding the JSON would change
//     the bytes);
//  2. splits the header at commas into key=value pairs, takes t and every v1
//     (more than one v1 may appear in future to allow key rotation; any one
//     matching is enough);
//  3. computes HMAC-SHA256 with the shared secret over the ASCII decimal t,
//     a ".", and the body, hex-encodes it and compares it in constant time
//     (hmac.Equal) with v1;
//  4. rejects the request when t is further than a tolerance from its own
//     clock. The timestamp is inside the MAC, so an attacker cannot refresh
//     it; the tolerance bounds how long a captured request can be replayed.
//     Five minutes absorbs clock skew between hosts and is the usual choice;
//     receivers that must never act twice on one message can also remember
//     the MessageId of the messages seen within the tolerance.
//
// VerifySignature implements these steps for Go receivers. Without a secret
// the header is omitted (the receiver cannot tell this server from anyone
// else, so configure one whenever the webhook is reachable by others).
//
// # Concurrency and ordering
//
// A Reviewer is safe for concurrent use; it holds no lock while a handler
// runs, so rooms and senders are reviewed in parallel. Ordering of one
// sender's messages is the caller's job: the gateway reviews on the
// connection's reader goroutine, one message at a time.
package review
