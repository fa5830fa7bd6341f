// Package server assembles ivschatd from its parts — store, key ring,
// authenticator, control plane and messaging gateway — and runs it until its
// context ends, then shuts down gracefully.
package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/ivschatd/ivschatd/internal/api"
	"github.com/ivschatd/ivschatd/internal/broker"
	"github.com/ivschatd/ivschatd/internal/chatlog"
	"github.com/ivschatd/ivschatd/internal/clusterstats"
	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/connquota"
	"github.com/ivschatd/ivschatd/internal/console"
	"github.com/ivschatd/ivschatd/internal/messaging"
	"github.com/ivschatd/ivschatd/internal/metrics"
	"github.com/ivschatd/ivschatd/internal/ratelimit"
	"github.com/ivschatd/ivschatd/internal/redisconn"
	"github.com/ivschatd/ivschatd/internal/review"
	"github.com/ivschatd/ivschatd/internal/sigv4"
	"github.com/ivschatd/ivschatd/internal/store"
	"github.com/ivschatd/ivschatd/internal/store/postgres"
	"github.com/ivschatd/ivschatd/internal/store/sqlite"
	"github.com/ivschatd/ivschatd/internal/token"
	"github.com/ivschatd/ivschatd/internal/tokenledger"
)

// File names in the data dir.
const (
	databaseFile = "ivschatd.db"
	// ledgerFile holds the used chat tokens of a single node (cluster mode
	// keeps them in Redis).
	ledgerFile  = "used-tokens.db"
	keyringFile = "chat-token-keys.json"
)

// Server is a running ivschatd.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	store   store.Store
	keyring *token.Keyring
	gateway *messaging.Gateway
	broker  *broker.Redis // nil unless cluster mode (--redis-url)
	// redis serves the token ledger and the rate limiter (the broker has its
	// own connections for pub/sub); nil unless cluster mode.
	redis   *redis.Client
	quota   *connquota.Redis    // the cluster's connection quota; nil unless cluster mode
	ledger  *tokenledger.SQLite // used tokens of a single node; nil in cluster mode
	chatlog *chatlog.Pipeline
	metrics *metrics.Registry
	handler http.Handler
	ready   atomic.Bool
	// readiness answers /readyz (readiness.go).
	readiness *readiness
	listener  net.Listener
	wsLis     net.Listener
	pprofLis  net.Listener // nil unless --pprof-listen is set
	// certs serves the --tls-cert/--tls-key pair and reloads it on
	// SIGHUP (tlsreload.go); nil without --tls-cert.
	certs *certSource

	// The extension API (extensions.go): this node's ID, start time and
	// build, and in cluster mode the gatherer that asks the other nodes.
	node         string
	started      time.Time
	build        buildInfo
	clusterStats *clusterstats.Redis
}

// New opens the store and key ring and builds the handlers. It binds the
// listeners too, so the caller knows the final addresses (port 0 works) before
// Run.
//
// Everything that can fail without leaving a trace comes first — the TLS pair,
// the listen addresses, the data dir's usability, the database and Redis
// connections — so a server that cannot start does not leave generated
// credentials or key files behind. Every error names the setting at fault.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log, metrics: metrics.New(), started: time.Now(), build: defaultBuild(), node: newNodeID()}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if cfg.TLSCert != "" {
		if s.certs, err = newCertSource(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, err
		}
		s.metrics.Register(s.certs)
	}
	if err := s.bind(); err != nil {
		return nil, err
	}
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if cfg.PostgresURL != "" {
		// Assigned through a typed variable: a nil *postgres.Store in the
		// interface would not be nil, and close would call it.
		pg, err := postgres.Open(ctx, cfg.PostgresURL)
		if err != nil {
			return nil, settingError("--postgres-url", connectError(err))
		}
		s.store = pg
		log.Info("store: PostgreSQL")
	}
	if cfg.RedisURL != "" {
		if err := s.connectCluster(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.PostgresURL == "" {
		path := filepath.Join(cfg.DataDir, databaseFile)
		lite, err := sqlite.Open(path)
		if err != nil {
			return nil, settingError("--data-dir", err)
		}
		s.store = lite
		log.Info("store: SQLite", "path", path)
	}
	if s.keyring, err = openKeyring(cfg, log); err != nil {
		return nil, err
	}
	auth, err := s.authenticator()
	if err != nil {
		return nil, err
	}
	if s.chatlog, err = s.openChatLog(ctx); err != nil {
		return nil, err
	}
	s.metrics.Register(metrics.ChatLog(s.chatlog.Stats))
	reviewer, err := s.reviewer()
	if err != nil {
		return nil, err
	}
	s.metrics.Register(metrics.Review(reviewer.Stats))
	opts := messaging.Options{
		Reviewer:       reviewer,
		TrustedProxies: cfg.TrustedProxies,
		Recorder:       s.chatlog,
		// A room change the broker brings (another node's UpdateRoom,
		// DeleteRoom or logging-configuration announcement) refreshes the
		// room's chat-log routing at once.
		RoomChanged: s.chatlog.RoomChanged,
		Logger:      log.With("component", "messaging"),
		Tokens:      s.keyring,
		Rooms:       s.store,
		// Bans (the BanUser extension) come with the handshake's room read.
		Bans:                 s.store,
		MaxConnections:       cfg.MaxConnections,
		MaxPendingBytes:      cfg.MaxPendingBytes,
		SocketSendBuffer:     cfg.SocketSendBuffer,
		QueueLimit:           cfg.QueueLimit,
		WriteCoalesce:        writeCoalesce(cfg.WriteCoalesce),
		PingInterval:         cfg.PingInterval,
		IdleTimeout:          cfg.IdleTimeout,
		RequestRatePerSecond: cfg.RequestRatePerSecond,
		HistoryDefault:       cfg.HistoryDefault,
	}
	if s.broker != nil {
		s.useCluster(&opts)
		s.metrics.Register(metrics.Broker(s.broker.Stats))
	} else {
		path := filepath.Join(cfg.DataDir, ledgerFile)
		if s.ledger, err = tokenledger.OpenSQLite(ctx, path, log.With("component", "tokenledger")); err != nil {
			return nil, settingError("--data-dir", err)
		}
		opts.Ledger = s.ledger
		s.metrics.Register(metrics.TokenLedger(s.ledger.Stats))
	}
	if s.gateway, err = messaging.NewGateway(opts); err != nil {
		return nil, err
	}
	s.metrics.Register(metrics.Gateway(s.gateway.Stats))
	var gatherer clusterstats.Gatherer = &clusterstats.Local{Node: s.node, Source: statsSource{s}}
	if s.redis != nil {
		s.clusterStats, err = clusterstats.NewRedis(ctx, s.redis, clusterstats.RedisOptions{
			Prefix: cfg.RedisPrefix, Node: s.node, Source: statsSource{s}, Timeout: statsTimeout,
			Logger: log.With("component", "clusterstats"),
		})
		if err != nil {
			return nil, settingError("--redis-url", err)
		}
		gatherer = s.clusterStats
		s.metrics.Register(metrics.ClusterStats(s.clusterStats.Stats))
	}
	s.startViewerCounts(gatherer)
	s.metrics.Register(metrics.IVS(s.gateway.Stats, reviewer.Stats, s.chatlog.Stats))
	s.metrics.Register(metrics.Setting("messaging_connection_limit",
		"The concurrent chat connections quota (--max-connections): of this node alone, or in cluster mode of the whole cluster.", float64(cfg.MaxConnections)))
	s.metrics.Register(metrics.Setting("chatlog_spool_limit_bytes",
		"The bound of each chat-log destination's spool (--chatlog-max-spool-bytes); records beyond it are dropped.", float64(cfg.ChatLogMaxSpoolBytes)))
	control, err := api.New(api.Config{
		Region:                   cfg.Region,
		AccountID:                cfg.AccountID,
		MaxRooms:                 cfg.MaxRooms,
		MaxLoggingConfigurations: cfg.MaxLoggingConfigurations,
		TokenTTL:                 cfg.TokenTTL,
		PageTokenKey:             pageTokenKey(s.keyring),
		RateLimits:               cfg.RateLimits,
		CheckReviewURI:           reviewer.CheckURI,
	}, api.Deps{
		Store:        s.store,
		Tokens:       s.keyring,
		Messaging:    s.gateway,
		Auth:         auth,
		Logger:       log.With("component", "api"),
		Observer:     s.metrics,
		Changes:      s.chatlog,
		Destinations: s.chatlog,
		Extensions:   extensions{Gatherer: gatherer, s: s},
	})
	if err != nil {
		return nil, err
	}
	s.readiness = s.newReadiness()
	s.metrics.Register(metrics.Readiness(s.readiness.stats))
	var consoleHandler http.Handler
	if cfg.Console {
		if consoleHandler, err = console.New(); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes(control, consoleHandler)
	return s, nil
}

// bind opens the listen addresses. It runs before anything is created in the
// data dir: "address already in use" is the commonest start failure.
func (s *Server) bind() error {
	var err error
	if s.listener, err = listen("--listen", s.cfg.Listen); err != nil {
		return err
	}
	if s.cfg.MessagingListen != "" {
		if s.wsLis, err = listen("--messaging-listen", s.cfg.MessagingListen); err != nil {
			return err
		}
	}
	if s.cfg.PprofListen != "" {
		if s.pprofLis, err = listen("--pprof-listen", s.cfg.PprofListen); err != nil {
			return err
		}
	}
	return nil
}

func listen(setting, addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		// *net.OpError repeats "listen tcp ADDR"; its cause is the news.
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err
		}
		return nil, fmt.Errorf("%s %s: %w", setting, addr, err)
	}
	return lis, nil
}

// prepareDataDir creates the data dir if needed and proves it is a writable
// directory, so a bad --data-dir is reported as such and not as an obscure
// SQLite or key-file error halfway through the start.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(pe.Err, syscall.ENOTDIR) {
			return fmt.Errorf("--data-dir %s: not a directory", dir)
		}
		return settingError("--data-dir", err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("--data-dir %s: not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// connectError shortens a failed database connection to its cause: pgx
// reports every attempt (TLS, then plain) on lines of their own, but an
// operator needs "cannot connect to HOST:PORT: connection refused".
func connectError(err error) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || op.Addr == nil {
		return err
	}
	cause := op.Err
	for {
		inner := errors.Unwrap(cause)
		if inner == nil {
			break
		}
		cause = inner
	}
	return fmt.Errorf("cannot connect to %s: %w", op.Addr, cause)
}

// settingError prefixes err with the setting it concerns, for the one-line
// start failure message.
func settingError(setting string, err error) error {
	return fmt.Errorf("%s: %w", setting, err)
}

// connectCluster connects the broker, and the client the token ledger and
// the room rate limiter share, to Redis. It fails when Redis does not answer:
// a node that cannot reach the others must not serve rooms whose traffic they
// would never see. It runs before anything is created in the data dir.
func (s *Server) connectCluster(ctx context.Context) error {
	redisconn.SetLogger(s.log)
	var err error
	s.broker, err = broker.NewRedis(ctx, s.cfg.RedisURL,
		broker.WithPrefix(s.cfg.RedisPrefix),
		broker.WithLogger(s.log.With("component", "broker")))
	if err != nil {
		return settingError("--redis-url", err)
	}
	if s.redis, err = redisconn.Open(ctx, s.cfg.RedisURL); err != nil {
		return settingError("--redis-url", err)
	}
	s.quota, err = connquota.NewRedis(ctx, s.redis, connquota.Options{
		Prefix: s.cfg.RedisPrefix, Limit: s.cfg.MaxConnections, Logger: s.log.With("component", "connquota"),
	})
	if err != nil {
		return settingError("--redis-url", err)
	}
	// The node's ID in the quota's lease names it in the extension API
	// too, so both views of the cluster agree.
	s.node = s.quota.Node()
	return nil
}

// useCluster wires the connected broker, token ledger and room rate limiter
// into the gateway's options.
func (s *Server) useCluster(opts *messaging.Options) {
	opts.Broker = s.broker
	opts.Ledger = tokenledger.New(s.redis, s.cfg.RedisPrefix)
	// Room and moderation rates shared by all nodes (messaging falls back
	// to each node's own buckets while Redis fails).
	opts.RoomLimiter = ratelimit.NewRedis(s.redis, s.cfg.RedisPrefix)
	// --max-connections is the cluster's (messaging falls back to this
	// node's share of it while Redis fails).
	opts.Quota = s.quota
	s.metrics.Register(metrics.ConnQuota(s.quota.Stats))
	if s.cfg.PostgresURL == "" {
		s.log.Warn("cluster mode with SQLite: rooms live in this node's data dir only; use --postgres-url so every node sees them")
	}
	if len(s.cfg.TokenKeys) == 0 {
		s.log.Warn("cluster mode without --token-keys: this node's key ring file seals chat tokens that other nodes cannot open")
	}
	s.log.Info("cluster mode: Redis broker, token ledger, room rate limits and connection quota", "prefix", s.cfg.RedisPrefix)
}

// writeCoalesce maps the config's "0 = write at once" to the gateway's
// convention, where zero means its default and a negative value turns
// coalescing off.
func writeCoalesce(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// KeyringPath is where the chat-token key ring of a data dir lives.
func KeyringPath(dataDir string) string { return filepath.Join(dataDir, keyringFile) }

func openKeyring(cfg config.Config, log *slog.Logger) (*token.Keyring, error) {
	if len(cfg.TokenKeys) > 0 {
		keys := make([]token.Key, 0, len(cfg.TokenKeys))
		for i, s := range cfg.TokenKeys {
			k, err := token.ParseKey(s)
			if err != nil {
				return nil, fmt.Errorf("tokenKeys[%d]: %w", i, err)
			}
			keys = append(keys, k)
		}
		return token.NewKeyring(keys...)
	}
	kr, err := token.LoadOrCreateKeyring(KeyringPath(cfg.DataDir))
	if err != nil {
		return nil, fmt.Errorf("chat token key ring: %w", err)
	}
	// Recorded before the first token is sealed: from now on the previous
	// key seals nothing, and retire-token-keys counts --token-ttl from here.
	// Not fatal: a key file the server cannot rewrite (a read-only secret
	// mount) served before; without the record retire-token-keys keeps the
	// older keys, which is the safe side.
	if err := kr.MarkSealing(time.Now()); err != nil {
		log.Warn("chat token key ring: cannot record when the newest key began sealing; retire-token-keys will keep the older keys", "err", err)
	}
	return kr, nil
}

// pageTokenKey derives the nextToken MAC key from the oldest token key, so
// page tokens survive restarts and rotation without another secret to manage.
func pageTokenKey(kr *token.Keyring) []byte {
	keys := kr.Keys()
	oldest := keys[0]
	for _, k := range keys[1:] {
		if k.Created.Before(oldest.Created) {
			oldest = k
		}
	}
	m := hmac.New(sha256.New, oldest.Secret)
	m.Write([]byte("ivschatd page tokens v1"))
	return m.Sum(nil)
}

// openChatLog opens the chat-logging pipeline: its spool lives in the data dir
// and undelivered records from before a crash are delivered again.
func (s *Server) openChatLog(ctx context.Context) (*chatlog.Pipeline, error) {
	endpoint := func(url string) chatlog.Endpoint {
		return chatlog.Endpoint{
			Endpoint:        url,
			Region:          s.cfg.DestinationsRegion,
			AccessKeyID:     s.cfg.DestinationsAccessKeyID,
			SecretAccessKey: s.cfg.DestinationsSecretKey,
			UsePathStyle:    s.cfg.S3PathStyle,
		}
	}
	p, err := chatlog.Open(ctx, chatlog.Options{
		Dir:           filepath.Join(s.cfg.DataDir, "chatlog-spool"),
		LocalDir:      filepath.Join(s.cfg.DataDir, "chatlogs"),
		MaxSpoolBytes: int64(s.cfg.ChatLogMaxSpoolBytes),
		Store:         s.store,
		Region:        s.cfg.Region,
		AccountID:     s.cfg.AccountID,
		Destinations: chatlog.DestinationOptions{
			S3:             endpoint(s.cfg.S3Endpoint),
			CloudWatchLogs: endpoint(s.cfg.CloudWatchLogsEndpoint),
			Firehose:       endpoint(s.cfg.FirehoseEndpoint),
		},
		S3BatchInterval: s.cfg.ChatLogS3BatchInterval,
		RouteTTL:        s.cfg.ChatLogRouteTTL,
		Logger:          s.log.With("component", "chatlog"),
	})
	if err != nil {
		return nil, fmt.Errorf("chat logging: %w", err)
	}
	return p, nil
}

func (s *Server) reviewer() (*review.Reviewer, error) {
	secret := []byte(s.cfg.ReviewWebhookSecret)
	if len(secret) == 0 {
		var path string
		var err error
		if secret, path, err = loadOrCreateReviewSecret(s.cfg.DataDir); err != nil {
			return nil, fmt.Errorf("review webhook secret: %w", err)
		}
		s.log.Info("webhook review requests are signed with the secret in the data dir", "path", path)
	}
	return review.New(review.Options{
		Timeout:       s.cfg.ReviewTimeout,
		WebhookSecret: secret,
		WebhookAllow:  s.cfg.ReviewWebhookAllow,
		Lambda: review.LambdaOptions{
			Endpoint:        s.cfg.LambdaEndpoint,
			Region:          s.cfg.LambdaRegion,
			AccessKeyID:     s.cfg.LambdaAccessKeyID,
			SecretAccessKey: s.cfg.LambdaSecretKey,
		},
		Logger: s.log.With("component", "review"),
	})
}

func (s *Server) authenticator() (api.Authenticator, error) {
	if s.cfg.Insecure {
		s.log.Warn("AUTHENTICATION IS OFF (--insecure-no-auth): any client can create, change and delete everything; use only for throwaway local emulation")
		return nil, nil
	}
	keys := s.cfg.AccessKeys
	if len(keys) == 0 {
		key, path, created, err := loadOrCreateCredentials(s.cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		if created {
			s.log.Info("generated a full-access key pair; use it as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", "path", path, "accessKeyId", key.AccessKeyID)
		} else {
			s.log.Info("using the key pair stored in the data dir", "path", path, "accessKeyId", key.AccessKeyID)
		}
		keys = []config.AccessKey{key}
	}
	creds := make([]sigv4.Credential, len(keys))
	for i, k := range keys {
		creds[i] = sigv4.Credential{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey, Policy: k.Policy}
	}
	return sigv4.NewVerifier("ivschat", creds)
}

// routes splits traffic on the shared listener: WebSocket upgrades go to the
// messaging gateway (clients connect to the bare host, path "/"), /healthz
// answers liveness and /readyz readiness, /metrics serves Prometheus metrics,
// /console/ the web console (nil: turned off, 404), everything else is the
// control plane. (No control-plane operation uses a GET path other than
// /tags/…, nor any path under /console, so these paths cannot shadow an
// operation.)
func (s *Server) routes(control, webConsole http.Handler) http.Handler {
	metricsHandler := s.metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/metrics" && r.Method == http.MethodGet:
			metricsHandler.ServeHTTP(w, r)
		case isHealthCheck(r):
			s.serveHealth(w)
		case isReadyCheck(r):
			s.serveReady(w, true)
		case isWebSocketUpgrade(r):
			s.gateway.ServeHTTP(w, r)
		case isConsolePath(r.URL.Path):
			if webConsole == nil {
				http.Error(w, "not found: the web console is turned off (--console=false)", http.StatusNotFound)
				return
			}
			webConsole.ServeHTTP(w, r)
		default:
			control.ServeHTTP(w, r)
		}
	})
}

// messagingRoutes serves --messaging-listen: chat connections and the health
// and readiness checks, nothing else. That address is the one that faces viewers; the
// control plane and the unauthenticated /metrics stay on --listen, which an
// operator can keep private.
func (s *Server) messagingRoutes() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case isHealthCheck(r):
			s.serveHealth(w)
		case isReadyCheck(r):
			s.serveReady(w, false)
		case isWebSocketUpgrade(r):
			s.gateway.ServeHTTP(w, r)
		default:
			http.Error(w, "not found: this address serves chat connections (WebSocket), /healthz and /readyz only", http.StatusNotFound)
		}
	})
}

func isConsolePath(path string) bool {
	return path == strings.TrimSuffix(console.Prefix, "/") || strings.HasPrefix(path, console.Prefix)
}

func isHealthCheck(r *http.Request) bool {
	return r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead)
}

func (s *Server) serveHealth(w http.ResponseWriter) {
	if !s.ready.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func isWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// Addr is the control-plane listener's address.
func (s *Server) Addr() net.Addr { return s.listener.Addr() }

// MessagingAddr is the separate WebSocket listener's address, or nil when
// chat shares the main listener.
func (s *Server) MessagingAddr() net.Addr {
	if s.wsLis == nil {
		return nil
	}
	return s.wsLis.Addr()
}

// Reload re-reads what can change without a restart — today the
// --tls-cert/--tls-key pair — and is what SIGHUP does. Open connections are
// not touched. A failed reload keeps the previous certificate, is logged at
// Error with the reason and counted (ivschatd_tls_reloads_total{result="failed"}).
func (s *Server) Reload() {
	if s.certs == nil {
		s.log.Info("reload (SIGHUP): nothing to reload without --tls-cert")
		return
	}
	cert, err := s.certs.Reload()
	if err != nil {
		s.log.Error("TLS certificate reload failed; still serving the previous certificate", "err", err)
		return
	}
	s.log.Info("TLS certificate reloaded", "subject", cert.Leaf.Subject.String(),
		"serial", cert.Leaf.SerialNumber.String(), "notAfter", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
}

// Run serves until ctx ends, then shuts down: new requests are refused,
// WebSocket connections are closed with 1001, in-flight requests finish, and
// the store is closed — all within the configured shutdown timeout.
func (s *Server) Run(ctx context.Context) error {
	servers := []*http.Server{s.httpServer(s.handler)}
	listeners := []net.Listener{s.listener}
	if s.wsLis != nil {
		servers = append(servers, s.httpServer(s.messagingRoutes()))
		listeners = append(listeners, s.wsLis)
	}
	g, gctx := errgroup.WithContext(ctx)
	if s.pprofLis != nil {
		// Plain HTTP even with --tls-cert (the address is for loopback),
		// and shut down with the others below.
		ps := pprofServer()
		servers = append(servers, ps)
		lis := s.pprofLis
		s.log.Warn("serving Go runtime profiles; do not expose this address", "pprofListen", lis.Addr().String())
		g.Go(func() error {
			if err := ps.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	for i := range listeners {
		srv, lis := servers[i], listeners[i]
		g.Go(func() error {
			var err error
			if s.certs != nil {
				srv.TLSConfig = s.certs.config()
				err = srv.ServeTLS(lis, "", "")
			} else {
				err = srv.Serve(lis)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		})
	}
	s.ready.Store(true)
	s.log.Info("ivschatd ready", "listen", s.listener.Addr().String(), "region", s.cfg.Region, "accountId", s.cfg.AccountID, "tls", s.cfg.TLSCert != "")
	g.Go(func() error {
		<-gctx.Done()
		s.ready.Store(false)
		s.log.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		var errs []error
		if err := s.gateway.Shutdown(shutdownCtx); err != nil {
			errs = append(errs, fmt.Errorf("messaging shutdown: %w", err))
		}
		for _, srv := range servers {
			if err := srv.Shutdown(shutdownCtx); err != nil {
				// Connections still busy, or dialed by a client but never
				// used (net/http waits 5 s for those), when the bound
				// passed: close them. The bound is the promise; this is
				// not a failure of the shutdown.
				s.log.Warn("closing the remaining HTTP connections: shutdown timeout reached", "timeout", s.cfg.ShutdownTimeout)
				srv.Close()
			}
		}
		// Last: nothing records after the gateway and the control plane
		// have stopped; what is not delivered now stays in the spool.
		if err := s.chatlog.Close(shutdownCtx); err != nil {
			errs = append(errs, fmt.Errorf("chat log close: %w", err))
		}
		return errors.Join(errs...)
	})
	err := g.Wait()
	if cerr := s.close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	s.log.Info("stopped")
	return err
}

func (s *Server) httpServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler: handler,
		// ReadTimeout covers headers and body: the control plane reads the
		// whole body before it checks the signature, so without it a
		// client sending a body slowly held a connection (and a goroutine)
		// for as long as it liked. A WebSocket connection is not affected
		// past its handshake: the gateway hijacks it and sets its own read
		// deadlines.
		ReadTimeout:       s.cfg.HTTPReadTimeout,
		ReadHeaderTimeout: min(10*time.Second, s.cfg.HTTPReadTimeout),
		IdleTimeout:       s.cfg.HTTPIdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// pprofServer serves net/http/pprof on its own mux, so profiles are reachable
// only on --pprof-listen and never on the public listeners. The command line
// (/debug/pprof/cmdline) is not served: flags such as --review-webhook-secret
// or a --postgres-url with a password would be readable by anyone who can
// reach the address.
func pprofServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not served: the command line can hold secrets", http.StatusNotFound)
	})
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

func (s *Server) close() error {
	var errs []error
	if s.listener != nil {
		s.listener.Close()
	}
	if s.wsLis != nil {
		s.wsLis.Close()
	}
	if s.pprofLis != nil {
		s.pprofLis.Close()
	}
	if s.chatlog != nil {
		// Idempotent: Run closed it already unless New failed half-way.
		s.chatlog.Close(context.Background())
	}
	// After the gateway (Run shut it down, or New never started it): it
	// publishes and checks tokens until then.
	if s.broker != nil {
		if err := s.broker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("redis broker: %w", err))
		}
		s.broker = nil
	}
	if s.clusterStats != nil {
		s.clusterStats.Close()
		s.clusterStats = nil
	}
	if s.quota != nil {
		// After the gateway's last connection ended: the node's slots are
		// free for the others at once, not after the lease's TTL.
		if err := s.quota.Close(); err != nil {
			// Not a failed shutdown: the lease then frees them within
			// its TTL.
			s.log.Warn("connection quota: could not give this node's slots back; they are free once its lease expires", "ttl", connquota.DefaultTTL, "err", err)
		}
		s.quota = nil
	}
	if s.redis != nil {
		if err := s.redis.Close(); err != nil {
			errs = append(errs, fmt.Errorf("redis: %w", err))
		}
		s.redis = nil
	}
	if s.ledger != nil {
		if err := s.ledger.Close(); err != nil {
			errs = append(errs, err)
		}
		s.ledger = nil
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, err)
		}
		s.store = nil
	}
	return errors.Join(errs...)
}

// BackupFiles names what a backup of a data dir holds: the SQLite databases
// (snapshotted) and the key files (copied). The chat-log spool is left out:
// its records belong to the node that spooled them, which delivers them
// itself; a restored copy would deliver them a second time.
func BackupFiles() (databases, files []string) {
	return []string{databaseFile, ledgerFile}, []string{keyringFile, credentialsFile, reviewSecretFile}
}
