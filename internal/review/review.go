package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/egress"
	"github.com/ivschatd/ivschatd/internal/throttle"
)

// DefaultTimeout is the real service's review quota (not adjustable there).
const DefaultTimeout = 200 * time.Millisecond

// maxResponseBytes bounds a handler's answer. A valid answer is at most a
// few KB (500 code points of content and a small attribute map); anything
// far larger is a broken handler, and reading it would cost memory and time
// inside the review budget.
const maxResponseBytes = 64 << 10

// Fallback reasons (Result.Reason and Stats).
const (
	ReasonTimeout = "timeout" // no answer within Options.Timeout
	ReasonError   = "error"   // transport error, HTTP status ≠ 2xx, Lambda FunctionError, unsupported URI
	ReasonInvalid = "invalid" // an answer that breaks the contract
	// ReasonTargetRefused: the webhook's host or the address it resolved
	// to is not allowed (link-local, or outside Options.WebhookAllow).
	ReasonTargetRefused = "target_refused"
)

// Request is one message to review.
type Request struct {
	Content    string
	MessageID  string
	RoomARN    string
	Attributes map[string]string
	Sender     Sender
	// MaxContentLength is the room's maximum message length in code points;
	// replacement content longer than this is an invalid answer. Zero: no
	// limit.
	MaxContentLength int
}

// Sender identifies the sender of a reviewed message.
type Sender struct {
	UserID     string
	Attributes map[string]string
	IP         string
}

// Result is the delivery decision.
type Result struct {
	Allow bool
	// Content and Attributes are what to deliver when Allow is true: the
	// handler's replacements, or the originals.
	Content    string
	Attributes map[string]string
	// Fallback is true when the handler's fallbackResult decided, not the
	// handler; Reason says why (one of the Reason constants).
	Fallback bool
	Reason   string
}

// LambdaOptions configures how Lambda ARNs are invoked.
type LambdaOptions struct {
	// Endpoint is the base URL of a Lambda-compatible Invoke API; empty
	// means AWS's endpoint for the region.
	Endpoint string
	// Region signs and routes the requests; empty means the region in the
	// handler's ARN.
	Region string
	// AccessKeyID and SecretAccessKey are static credentials; empty means
	// the SDK's default credential chain (environment, shared files, IAM
	// role).
	AccessKeyID     string
	SecretAccessKey string
}

// Options configures a Reviewer. Zero values take the documented defaults.
type Options struct {
	// Timeout bounds one review, connection set-up included (default 200ms).
	Timeout time.Duration
	// WebhookSecret signs webhook requests (see the package documentation);
	// empty: requests are not signed.
	WebhookSecret []byte
	// HTTPClient carries Lambda requests. Default: a keep-alive client
	// tuned for many short requests to few hosts. A given client is copied
	// and set not to follow redirects. Webhooks always use the Reviewer's
	// own transport, whose dialer enforces the target policy.
	HTTPClient *http.Client
	Lambda     LambdaOptions
	// WebhookAllow restricts webhook targets to its hosts and networks;
	// empty: any target but the link-local addresses, which are always
	// refused (see package egress).
	WebhookAllow egress.AllowList
	// Resolver resolves webhook host names (nil: net.DefaultResolver).
	Resolver *net.Resolver
	Logger   *slog.Logger
}

// Reviewer invokes review handlers. It is safe for concurrent use.
type Reviewer struct {
	timeout time.Duration
	secret  []byte
	http    *http.Client // Lambda
	webhook *http.Client
	allow   *egress.AllowList
	lambda  *lambda.Client
	region  string // Options.Lambda.Region
	log     *slog.Logger
	// warn lets one handler failure a second be logged at Warn level: a
	// dead handler fails every message, and one line a second says as much
	// as a hundred.
	warn throttle.Every
	// refusedWarn does the same for refused webhook targets, so that a
	// failing handler elsewhere cannot hide a room probing the network.
	refusedWarn throttle.Every

	stats stats
}

// New returns a Reviewer.
func New(opts Options) (*Reviewer, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	allow := opts.WebhookAllow
	r := &Reviewer{
		timeout: opts.Timeout,
		secret:  bytes.Clone(opts.WebhookSecret),
		http:    httpClient(opts.HTTPClient),
		webhook: webhookClient(&allow, opts.Resolver),
		allow:   &allow,
		region:  opts.Lambda.Region,
		log:     opts.Logger,
	}
	lc, err := newLambdaClient(opts.Lambda, r.http)
	if err != nil {
		return nil, err
	}
	r.lambda = lc
	return r, nil
}

// httpClient returns a client that does not follow redirects.
func httpClient(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	} else {
		out.Transport = transport()
	}
	out.CheckRedirect = noRedirects
	return &out
}

// webhookClient returns the client of webhook requests: its dialer refuses
// the targets allow does not allow, at every connection, after name
// resolution. It ignores HTTP_PROXY and friends: through a proxy, the dialer
// would see only the proxy, and the proxy would fetch any target.
func webhookClient(allow *egress.AllowList, resolver *net.Resolver) *http.Client {
	t := transport()
	t.Proxy = nil
	// The values of http.DefaultTransport's dialer.
	t.DialContext = allow.DialContext(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Resolver: resolver})
	return &http.Client{Transport: t, CheckRedirect: noRedirects}
}

func transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Review traffic is many small requests to a handful of hosts: keep
	// enough idle connections per host that a busy room does not open a
	// connection per message, and cap the total so a stalled handler
	// cannot make the server open thousands of sockets (requests beyond
	// the cap wait, then time out into the fallback).
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.MaxConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// noRedirects makes a 3xx the answer, a handler error: a handler must not
// bounce the message, and its signature, to another host.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// CheckURI judges a handler URI as far as it can be judged when a room is
// created or updated: a webhook whose host is a refused IP literal, or is
// not on a configured allow-list of names only, can never be called. The
// error says why, for the caller. Lambda ARNs and anything that is not a
// webhook URL pass (the API's pattern decides about those).
func (r *Reviewer) CheckURI(uri string) error {
	if !isWebhook(uri) {
		return nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("is not a valid URL: %w", err)
	}
	if u.Hostname() == "" {
		return errors.New("is a URL without a host")
	}
	return r.allow.CheckHost(u.Hostname())
}

func isWebhook(uri string) bool {
	return strings.HasPrefix(uri, "https://") || strings.HasPrefix(uri, "http://")
}

// Review asks h about req and returns the decision. It never fails: an
// unusable answer, an error or a timeout applies h.FallbackResult. Callers
// skip the call when the room has no handler (nil or empty URI); an empty
// URI here applies the fallback.
func (r *Reviewer) Review(ctx context.Context, h chat.MessageReviewHandler, req Request) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()

	body, err := encodeRequest(&req)
	var resp []byte
	if err == nil {
		resp, err = r.invoke(ctx, h.URI, body)
	}
	var res Result
	if err == nil {
		res, err = parseResponse(resp, &req)
	}
	elapsed := time.Since(start)
	if err != nil {
		reason := reasonOf(err, ctx)
		res = fallback(h, &req, reason)
		r.logFailure(h.URI, req.MessageID, reason, res.Allow, err)
	}
	r.stats.record(h.URI, res, elapsed)
	return res
}

func fallback(h chat.MessageReviewHandler, req *Request, reason string) Result {
	if h.FallbackResult == chat.FallbackDeny {
		return Result{Fallback: true, Reason: reason}
	}
	return Result{Allow: true, Content: req.Content, Attributes: req.Attributes, Fallback: true, Reason: reason}
}

// invalidError marks an answer that breaks the contract.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return "invalid review answer: " + e.msg }

func invalid(format string, args ...any) error {
	return &invalidError{fmt.Sprintf(format, args...)}
}

// handlerError is a failure the handler reported (HTTP status, Lambda
// FunctionError): an error even when it arrived just before the deadline.
type handlerError struct{ msg string }

func (e *handlerError) Error() string { return e.msg }

func reasonOf(err error, ctx context.Context) string {
	var inv *invalidError
	var he *handlerError
	var refused *egress.RefusedError
	switch {
	case errors.As(err, &refused):
		return ReasonTargetRefused
	case errors.As(err, &inv):
		return ReasonInvalid
	case errors.As(err, &he):
		return ReasonError
	case errors.Is(err, context.DeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded):
		// Our deadline, or the caller's earlier one: either way the handler
		// did not answer in time.
		return ReasonTimeout
	}
	return ReasonError
}

func (r *Reviewer) logFailure(uri, messageID, reason string, allow bool, err error) {
	level := slog.LevelDebug
	warn := &r.warn
	if reason == ReasonTargetRefused {
		warn = &r.refusedWarn
	}
	if warn.Allow(time.Now(), time.Second) {
		level = slog.LevelWarn
	}
	result := chat.FallbackAllow
	if !allow {
		result = chat.FallbackDeny
	}
	r.log.Log(context.Background(), level, "review: handler failed, fallback applied",
		"uri", uri, "message", messageID, "reason", reason, "fallback", result, "err", err)
}

// invoke sends body to the handler and returns its answer.
func (r *Reviewer) invoke(ctx context.Context, uri string, body []byte) ([]byte, error) {
	switch {
	case strings.HasPrefix(uri, "arn:"):
		return r.invokeLambda(ctx, uri, body)
	case isWebhook(uri):
		return r.invokeWebhook(ctx, uri, body)
	}
	return nil, fmt.Errorf("unsupported handler URI %q: want a Lambda function ARN or an http(s) URL", uri)
}

// wireRequest is the payload sent to the handler (spec §7); field order
// follows the spec's sample.
type wireRequest struct {
	Content    string            `json:"Content"`
	MessageID  string            `json:"MessageId"`
	RoomARN    string            `json:"RoomArn"`
	Attributes map[string]string `json:"Attributes"`
	Sender     wireSender        `json:"Sender"`
}

type wireSender struct {
	UserID     string            `json:"UserId"`
	Attributes map[string]string `json:"Attributes"`
	IP         string            `json:"Ip"`
}

var emptyAttrs = map[string]string{}

func encodeRequest(req *Request) ([]byte, error) {
	w := wireRequest{
		Content:    req.Content,
		MessageID:  req.MessageID,
		RoomARN:    req.RoomARN,
		Attributes: req.Attributes,
		Sender:     wireSender{UserID: req.Sender.UserID, Attributes: req.Sender.Attributes, IP: req.Sender.IP},
	}
	// Handlers in the wild index these maps without a nil check.
	if w.Attributes == nil {
		w.Attributes = emptyAttrs
	}
	if w.Sender.Attributes == nil {
		w.Sender.Attributes = emptyAttrs
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Content is chat text: keep <, > and & readable for the handler.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
