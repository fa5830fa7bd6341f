// Package api serves the IVS Chat control plane: the 17 operations of the
// 2020-07-14 API over restJson1, authenticated with SigV4, exactly as the AWS
// SDKs expect them on the wire.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/sigv4"
	"github.com/ivschatd/ivschatd/internal/store"
	"github.com/ivschatd/ivschatd/internal/token"
)

// Config holds the control plane's settings.
type Config struct {
	Region    string
	AccountID string

	// MaxRooms and MaxLoggingConfigurations are the per-account quotas
	// (ServiceQuotaExceededException when passed).
	MaxRooms                 int
	MaxLoggingConfigurations int

	// TokenTTL is how long a chat token may be used to open a connection
	// (tokenExpirationTime - issue time).
	TokenTTL time.Duration

	// PageTokenKey authenticates nextToken values so clients cannot forge them.
	PageTokenKey []byte

	// RateLimits maps operation names to a request-rate quota per second;
	// missing or zero means unlimited. Exceeding it gives ThrottlingException.
	RateLimits map[string]float64

	// MaxBodyBytes bounds request bodies (default 256 KiB).
	MaxBodyBytes int64

	// CheckReviewURI, when set, refuses a messageReviewHandler.uri that can
	// never be called (a webhook target the server's policy refuses); its
	// error becomes the field's message.
	CheckReviewURI func(uri string) error
}

// Authenticator verifies a request's signature and returns who signed it.
type Authenticator interface {
	Verify(r *http.Request, body []byte, now time.Time) (*sigv4.Credential, string, error)
}

// TokenSealer mints chat tokens.
type TokenSealer interface {
	Seal(c token.Claims) (string, error)
}

// Messaging is what the control plane needs of the live connections: the
// operations that reach connected clients, and notices of room changes.
type Messaging interface {
	SendEvent(ctx context.Context, roomID, eventName string, attrs map[string]string) (eventID string, err error)
	DeleteMessage(ctx context.Context, roomID, messageID, reason string) (eventID string, err error)
	DisconnectUser(ctx context.Context, roomID, userID, reason string) error
	// RoomUpdated and RoomDeleted tell every node's connections; an error
	// means some could not be told (the change itself is stored).
	RoomUpdated(ctx context.Context, room *chat.Room) error
	RoomDeleted(ctx context.Context, roomID string) error
}

// Observer is told about every control-plane request (metrics).
type Observer interface {
	ObserveRequest(operation string, status int, took time.Duration)
}

// ChangeListener is told when a room or logging configuration changed or
// went away, so caches elsewhere (chat logging's routes) are refreshed.
type ChangeListener interface {
	RoomChanged(id string)
	LoggingConfigurationChanged(id string)
}

// DestinationProber checks that a logging destination exists and can be
// written.
type DestinationProber interface {
	Probe(ctx context.Context, d chat.Destination) error
}

// Deps are the collaborators of the handler.
type Deps struct {
	Store     store.Store
	Tokens    TokenSealer
	Messaging Messaging
	// Auth verifies signatures; nil disables authentication (the loudly
	// logged insecure emulation mode).
	Auth     Authenticator
	Logger   *slog.Logger
	Observer Observer       // optional
	Changes  ChangeListener // optional
	// Destinations probes logging destinations; nil: every configuration
	// is ACTIVE at once.
	Destinations DestinationProber
	// Extensions serves the ivschatd extension operations (extensions.go);
	// nil: they are unknown operations.
	Extensions Extensions
}

// Handler is the control-plane http.Handler.
type Handler struct {
	cfg      Config
	store    store.Store
	tokens   TokenSealer
	msg      Messaging
	auth     Authenticator
	obs      Observer
	changes  ChangeListener
	probe    DestinationProber
	ext      Extensions
	log      *slog.Logger
	limiters map[string]*rateLimiter
	rooms    *roomExistence
	now      func() time.Time
}

// New returns the control-plane handler.
func New(cfg Config, deps Deps) (*Handler, error) {
	if cfg.Region == "" || cfg.AccountID == "" {
		return nil, errors.New("api: region and account ID are required")
	}
	if len(cfg.PageTokenKey) < 16 {
		return nil, errors.New("api: page token key must be at least 16 bytes")
	}
	if deps.Store == nil || deps.Tokens == nil || deps.Messaging == nil {
		return nil, errors.New("api: store, token sealer and messaging are required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 256 << 10
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		cfg:      cfg,
		store:    deps.Store,
		tokens:   deps.Tokens,
		msg:      deps.Messaging,
		auth:     deps.Auth,
		obs:      deps.Observer,
		changes:  deps.Changes,
		probe:    deps.Destinations,
		ext:      deps.Extensions,
		log:      log,
		limiters: make(map[string]*rateLimiter),
		rooms:    newRoomExistence(time.Second),
		now:      time.Now,
	}
	for name, perSecond := range cfg.RateLimits {
		if operations[name] == nil && extensionOperations[name] == nil {
			return nil, errors.New("api: rate limit for unknown operation " + name)
		}
		if perSecond > 0 {
			h.limiters[name] = newRateLimiter(perSecond)
		}
	}
	return h, nil
}

// call is one control-plane request on its way through the handler.
type call struct {
	ctx   context.Context
	op    *operation
	body  []byte
	label string     // the {resourceArn} path label, unescaped
	query url.Values // parsed query string
	cred  *sigv4.Credential
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.obs == nil {
		h.serve(w, r)
		return
	}
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	op := h.serve(sw, r)
	h.obs.ObserveRequest(op, sw.status, time.Since(start))
}

// statusWriter remembers the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// serve answers one request and returns the name of its operation ("" when
// the request did not get as far as routing).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) string {
	w.Header().Set(headerRequestID, newRequestID())
	if err := h.cors(w, r); err != nil {
		h.writeError(w, r, err)
		return ""
	}
	if r.Method == http.MethodOptions {
		servePreflight(w, r)
		return ""
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.writeError(w, r, chat.BadRequest(chat.ReasonOther, "request body is larger than the limit of "+strconv.FormatInt(h.cfg.MaxBodyBytes, 10)+" bytes"))
			return ""
		}
		h.writeError(w, r, chat.BadRequest(chat.ReasonOther, "cannot read request body: "+err.Error()))
		return ""
	}
	c := &call{ctx: r.Context(), body: body}
	if h.auth != nil {
		cred, _, err := h.auth.Verify(r, body, h.now())
		if err != nil {
			h.writeError(w, r, err)
			return ""
		}
		c.cred = cred
	}
	op, label, err := h.route(r)
	if err != nil {
		h.writeError(w, r, err)
		return ""
	}
	c.op, c.label = op, label
	if c.query, err = url.ParseQuery(r.URL.RawQuery); err != nil {
		h.writeError(w, r, chat.BadRequest(chat.ReasonOther, "malformed query string: "+err.Error()))
		return op.name
	}
	if lim := h.limiters[op.name]; lim != nil && !lim.allow(h.now()) {
		h.writeError(w, r, &chat.Error{
			Code:         chat.CodeThrottling,
			Message:      "rate exceeded for " + op.name,
			ResourceID:   "quota",
			ResourceType: chat.ResourceTypeRoom,
			Limit:        int(h.cfg.RateLimits[op.name]),
		})
		return op.name
	}
	out, err := op.serve(h, c)
	if err != nil {
		h.writeError(w, r, err)
		return op.name
	}
	if op.status == http.StatusNoContent {
		w.WriteHeader(http.StatusNoContent)
		return op.name
	}
	writeJSON(w, op.status, out)
	return op.name
}

func (h *Handler) roomChanged(id string) {
	if h.changes != nil {
		h.changes.RoomChanged(id)
	}
}

func (h *Handler) loggingConfigurationChanged(id string) {
	if h.changes != nil {
		h.changes.LoggingConfigurationChanged(id)
	}
}

// authorize checks the caller's access policy for the call's action on resource.
func (h *Handler) authorize(c *call, resource string) error {
	if c.cred == nil {
		return nil
	}
	action := actionOf(c.op)
	if !c.cred.Policy.Allows(action, resource) {
		return chat.AccessDenied("User: " + c.cred.AccessKeyID + " is not authorized to perform: " + action + " on resource: " + resource)
	}
	return nil
}

// arn builds the ARN of a resource of this server's region and account.
func (h *Handler) arn(kind chat.Kind, id string) string {
	return chat.ARN{Region: h.cfg.Region, Account: h.cfg.AccountID, Kind: kind, ID: id}.String()
}

// anyARN is the resource of calls that address no single resource (Create*, List*).
func (h *Handler) anyARN(kind chat.Kind) string { return h.arn(kind, "*") }

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	// Format as a UUID (version 4) like AWS request IDs.
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}
