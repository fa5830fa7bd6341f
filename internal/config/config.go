// Package config builds the server's one Config from, in rising precedence,
// built-in defaults, a JSON config file, IVSCHATD_* environment variables and
// command-line flags, and validates it before anything starts.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ivschatd/ivschatd/internal/egress"
	"github.com/ivschatd/ivschatd/internal/sigv4"
)

// AccessKey is one access key pair and what it may do.
type AccessKey struct {
	AccessKeyID     string       `json:"accessKeyId"`
	SecretAccessKey string       `json:"secretAccessKey"`
	Policy          sigv4.Policy `json:"policy"`
}

// Config is everything the server can be told.
type Config struct {
	Listen          string
	MessagingListen string
	DataDir         string
	Region          string
	AccountID       string
	TLSCert         string
	TLSKey          string
	LogLevel        string
	LogFormat       string

	// PprofListen, when set, serves net/http/pprof on this separate address
	// (profiling only; keep it on loopback).
	PprofListen string

	// Console serves the web console at /console/ on Listen (never on
	// MessagingListen). It is a client of the API with no authority of its
	// own; off, /console/ answers 404.
	Console bool

	// Insecure turns off request authentication: an emulation mode for
	// throwaway local setups only, logged loudly at start.
	Insecure bool

	TokenTTL                 time.Duration
	MaxRooms                 int
	MaxLoggingConfigurations int
	MaxConnections           int
	ShutdownTimeout          time.Duration

	// HTTPReadTimeout bounds reading one HTTP request, headers and body (a
	// control-plane call or a WebSocket handshake; a chat connection, once
	// upgraded, has its own deadlines). HTTPIdleTimeout bounds how long a
	// keep-alive connection may wait for its next request. Control-plane
	// bodies are at most 256 KiB and usually a few hundred bytes; the
	// default 30 s still admits 256 KiB at 9 KB/s.
	HTTPReadTimeout time.Duration
	HTTPIdleTimeout time.Duration

	// Messaging gateway tunables (zero values take the gateway's defaults).
	MaxPendingBytes      int
	SocketSendBuffer     int
	QueueLimit           int
	WriteCoalesce        time.Duration
	PingInterval         time.Duration
	IdleTimeout          time.Duration
	RequestRatePerSecond int
	// HistoryDefault is how many recent messages (0–100, 0 = none) a new
	// chat connection receives in rooms without an ivschatd:history tag.
	HistoryDefault int

	// TrustedProxies may set the client address with X-Forwarded-For.
	TrustedProxies prefixList

	// Message review handlers.
	ReviewTimeout       time.Duration
	ReviewWebhookSecret string // empty: generated into DataDir on first start
	LambdaEndpoint      string // empty: the SDK's default AWS endpoint for the region
	LambdaRegion        string
	LambdaAccessKeyID   string
	LambdaSecretKey     string

	// ReviewWebhookAllow restricts webhook targets to these hosts and
	// networks; empty: any target but link-local ones, always refused.
	ReviewWebhookAllow egress.AllowList

	// Chat logging: the spool bound and the AWS-compatible endpoints of the
	// three destination kinds (an empty endpoint writes local files under
	// DataDir/chatlogs instead).
	ChatLogMaxSpoolBytes    int
	ChatLogS3BatchInterval  time.Duration
	ChatLogRouteTTL         time.Duration
	S3Endpoint              string
	S3PathStyle             bool
	CloudWatchLogsEndpoint  string
	FirehoseEndpoint        string
	DestinationsRegion      string
	DestinationsAccessKeyID string
	DestinationsSecretKey   string

	// PostgresURL selects the PostgreSQL store instead of SQLite in DataDir.
	PostgresURL string
	// RedisURL turns on cluster mode: rooms' traffic and the single-use
	// token ledger are shared across nodes through this Redis.
	RedisURL string
	// RedisPrefix starts every Redis key and channel name, so that several
	// deployments can share one Redis.
	RedisPrefix string

	// AccessKeys come from the config file; the environment can add one
	// full-access pair (IVSCHATD_ACCESS_KEY_ID / IVSCHATD_SECRET_ACCESS_KEY).
	AccessKeys []AccessKey
	// TokenKeys are chat-token sealing keys in "ID:base64secret" form; when
	// empty, a key ring file in DataDir is used (and created).
	TokenKeys []string
	// RateLimits are per-operation request-rate quotas (requests/s); off by default.
	RateLimits map[string]float64
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Listen:                   "127.0.0.1:8080",
		DataDir:                  "./data",
		Region:                   "us-west-2",
		AccountID:                "123456789012",
		LogLevel:                 "info",
		LogFormat:                "text",
		Console:                  true,
		TokenTTL:                 60 * time.Minute,
		MaxRooms:                 50000,
		MaxLoggingConfigurations: 10,
		MaxConnections:           50000,
		ShutdownTimeout:          10 * time.Second,
		MaxPendingBytes:          1 << 20,
		HTTPReadTimeout:          30 * time.Second,
		HTTPIdleTimeout:          120 * time.Second,
		QueueLimit:               256,
		// 60 ms: the window that met p99 <= 100 ms for 5,000 viewers at
		// 100 msg/s on a 2-core machine; 20 ms saturated both cores
		// (docs/benchmarks.md). An idle room still flushes at once.
		WriteCoalesce:          60 * time.Millisecond,
		PingInterval:           30 * time.Second,
		IdleTimeout:            75 * time.Second,
		RequestRatePerSecond:   10,
		ReviewTimeout:          200 * time.Millisecond,
		ChatLogMaxSpoolBytes:   1 << 30,
		ChatLogS3BatchInterval: 60 * time.Second,
		ChatLogRouteTTL:        10 * time.Second,
		S3PathStyle:            true,
		RedisPrefix:            "ivschatd",
	}
}

// setting ties one scalar Config field to its flag, environment variable and
// config-file key, so the three sources cannot drift apart.
type setting struct {
	flag  string // also the base of the env var: listen -> IVSCHATD_LISTEN
	key   string // config-file key
	usage string
	value func(c *Config) flag.Value
}

// EnvName is the environment variable of a flag name.
func EnvName(flagName string) string {
	return "IVSCHATD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

var settings = []setting{
	{"listen", "listen", "address of the control plane and WebSocket listener (host:port)", func(c *Config) flag.Value { return (*stringValue)(&c.Listen) }},
	{"messaging-listen", "messagingListen", "optional separate address that serves only chat connections (WebSocket) and /healthz", func(c *Config) flag.Value { return (*stringValue)(&c.MessagingListen) }},
	{"pprof-listen", "pprofListen", "optional separate address (keep it on loopback) that serves Go runtime profiles at /debug/pprof/ for performance work; unset: not served", func(c *Config) flag.Value { return (*stringValue)(&c.PprofListen) }},
	{"data-dir", "dataDir", "directory for the SQLite database, key ring and generated credentials", func(c *Config) flag.Value { return (*stringValue)(&c.DataDir) }},
	{"region", "region", "AWS region that resource ARNs name", func(c *Config) flag.Value { return (*stringValue)(&c.Region) }},
	{"account-id", "accountId", "12-digit account ID that resource ARNs name", func(c *Config) flag.Value { return (*stringValue)(&c.AccountID) }},
	{"tls-cert", "tlsCert", "PEM certificate file: serve HTTPS/WSS (needs --tls-key)", func(c *Config) flag.Value { return (*stringValue)(&c.TLSCert) }},
	{"tls-key", "tlsKey", "PEM private key file for --tls-cert", func(c *Config) flag.Value { return (*stringValue)(&c.TLSKey) }},
	{"log-level", "logLevel", "debug, info, warn or error", func(c *Config) flag.Value { return (*stringValue)(&c.LogLevel) }},
	{"log-format", "logFormat", "text or json", func(c *Config) flag.Value { return (*stringValue)(&c.LogFormat) }},
	{"console", "console", "serve the web console at /console/ on --listen (never on --messaging-listen); it signs in with an access key and can do only what the key's policy allows", func(c *Config) flag.Value { return (*boolValue)(&c.Console) }},
	{"insecure-no-auth", "insecureNoAuth", "accept unsigned requests (local emulation only; never expose)", func(c *Config) flag.Value { return (*boolValue)(&c.Insecure) }},
	{"token-ttl", "tokenTTL", "how long a chat token may be used to connect (tokenExpirationTime - issue time)", func(c *Config) flag.Value { return (*durationValue)(&c.TokenTTL) }},
	{"max-rooms", "maxRooms", "rooms-per-account quota", func(c *Config) flag.Value { return (*intValue)(&c.MaxRooms) }},
	{"max-logging-configurations", "maxLoggingConfigurations", "logging-configurations-per-account quota", func(c *Config) flag.Value { return (*intValue)(&c.MaxLoggingConfigurations) }},
	{"max-connections", "maxConnections", "concurrent chat connections quota", func(c *Config) flag.Value { return (*intValue)(&c.MaxConnections) }},
	{"shutdown-timeout", "shutdownTimeout", "how long a graceful shutdown may take", func(c *Config) flag.Value { return (*durationValue)(&c.ShutdownTimeout) }},
	{"http-read-timeout", "httpReadTimeout", "longest time to read one HTTP request, headers and body (control plane, WebSocket handshake); slower clients are disconnected", func(c *Config) flag.Value { return (*durationValue)(&c.HTTPReadTimeout) }},
	{"http-idle-timeout", "httpIdleTimeout", "how long an idle keep-alive HTTP connection is kept open for its next request", func(c *Config) flag.Value { return (*durationValue)(&c.HTTPIdleTimeout) }},
	{"max-pending-bytes", "maxPendingBytes", "bytes of room broadcasts a chat connection may leave untaken (offered at least 1 s earlier, a tenth of the write timeout, and not accepted by its socket) before it is disconnected as a slow consumer; what was offered more recently never counts", func(c *Config) flag.Value { return (*intValue)(&c.MaxPendingBytes) }},
	{"socket-send-buffer", "socketSendBuffer", "SO_SNDBUF of each chat connection in bytes (0: the kernel's autotuning, which lets a client that does not read hold megabytes of kernel memory before --max-pending-bytes applies)", func(c *Config) flag.Value { return (*intValue)(&c.SocketSendBuffer) }},
	{"queue-limit", "queueLimit", "frames for one chat connection alone (errors, pongs, pings) that may wait before it is disconnected as a slow consumer", func(c *Config) flag.Value { return (*intValue)(&c.QueueLimit) }},
	{"write-coalesce", "writeCoalesce", "longest time the broadcasts of a room gather before one flush; a room whose flush fits between its messages writes each on arrival, a busier one gathers for twice its average flush, up to this bound (0 = always write at once)", func(c *Config) flag.Value { return (*durationValue)(&c.WriteCoalesce) }},
	{"ping-interval", "pingInterval", "how often chat connections are pinged", func(c *Config) flag.Value { return (*durationValue)(&c.PingInterval) }},
	{"idle-timeout", "idleTimeout", "a chat connection silent (no pong) this long is dropped", func(c *Config) flag.Value { return (*durationValue)(&c.IdleTimeout) }},
	{"request-rate", "requestRate", "requests per second each chat connection may make", func(c *Config) flag.Value { return (*intValue)(&c.RequestRatePerSecond) }},
	{"history-default", "historyDefault", "recent messages (0-100) every new chat connection receives in rooms without an ivschatd:history tag (0 = none)", func(c *Config) flag.Value { return (*intValue)(&c.HistoryDefault) }},
	{"trusted-proxies", "trustedProxies", "comma-separated IPs or CIDRs of proxies whose X-Forwarded-For names the client (review handlers' Sender.Ip)", func(c *Config) flag.Value { return &c.TrustedProxies }},
	{"review-timeout", "reviewTimeout", "how long a message review handler may take before its fallbackResult applies", func(c *Config) flag.Value { return (*durationValue)(&c.ReviewTimeout) }},
	{"review-webhook-secret", "reviewWebhookSecret", "HMAC secret that signs webhook review requests (default: generated into the data dir)", func(c *Config) flag.Value { return (*stringValue)(&c.ReviewWebhookSecret) }},
	{"review-webhook-allow", "reviewWebhookAllow", "comma-separated host names (*.example.com for subdomains), IPs and CIDRs that webhook review handlers may target; empty: any host but link-local addresses (cloud metadata), which are always refused", func(c *Config) flag.Value { return &c.ReviewWebhookAllow }},
	{"lambda-endpoint", "lambdaEndpoint", "Lambda Invoke endpoint for Lambda-ARN review handlers (default: AWS)", func(c *Config) flag.Value { return (*stringValue)(&c.LambdaEndpoint) }},
	{"lambda-region", "lambdaRegion", "region for Lambda calls (default: the one in the function ARN)", func(c *Config) flag.Value { return (*stringValue)(&c.LambdaRegion) }},
	{"lambda-access-key-id", "lambdaAccessKeyId", "access key for Lambda calls (default: the AWS SDK's credential chain)", func(c *Config) flag.Value { return (*stringValue)(&c.LambdaAccessKeyID) }},
	{"lambda-secret-access-key", "lambdaSecretAccessKey", "secret key for Lambda calls", func(c *Config) flag.Value { return (*stringValue)(&c.LambdaSecretKey) }},
	{"chatlog-max-spool-bytes", "chatLogMaxSpoolBytes", "bound of each chat-log destination's on-disk spool; records beyond it are dropped and counted", func(c *Config) flag.Value { return (*intValue)(&c.ChatLogMaxSpoolBytes) }},
	{"chatlog-s3-batch-interval", "chatLogS3BatchInterval", "longest a chat-log record waits to be batched into an S3 object", func(c *Config) flag.Value { return (*durationValue)(&c.ChatLogS3BatchInterval) }},
	{"chatlog-route-ttl", "chatLogRouteTTL", "longest a node logs a room by its cached logging configurations without reading them again: the bound for a change made through another node to reach a node with no connections in the room", func(c *Config) flag.Value { return (*durationValue)(&c.ChatLogRouteTTL) }},
	{"s3-endpoint", "s3Endpoint", "S3 API endpoint for s3 logging destinations (AWS, MinIO, ...; default: local files)", func(c *Config) flag.Value { return (*stringValue)(&c.S3Endpoint) }},
	{"s3-path-style", "s3PathStyle", "address S3 buckets in the path (needed by MinIO and most S3-compatible stores)", func(c *Config) flag.Value { return (*boolValue)(&c.S3PathStyle) }},
	{"cloudwatch-logs-endpoint", "cloudWatchLogsEndpoint", "CloudWatch Logs endpoint for cloudWatchLogs destinations (default: local files)", func(c *Config) flag.Value { return (*stringValue)(&c.CloudWatchLogsEndpoint) }},
	{"firehose-endpoint", "firehoseEndpoint", "Firehose endpoint for firehose destinations (default: local files)", func(c *Config) flag.Value { return (*stringValue)(&c.FirehoseEndpoint) }},
	{"destinations-region", "destinationsRegion", "region of the logging destinations (default: --region)", func(c *Config) flag.Value { return (*stringValue)(&c.DestinationsRegion) }},
	{"destinations-access-key-id", "destinationsAccessKeyId", "access key for the logging destinations (default: the AWS SDK's credential chain)", func(c *Config) flag.Value { return (*stringValue)(&c.DestinationsAccessKeyID) }},
	{"destinations-secret-access-key", "destinationsSecretAccessKey", "secret key for the logging destinations", func(c *Config) flag.Value { return (*stringValue)(&c.DestinationsSecretKey) }},
	{"postgres-url", "postgresURL", "PostgreSQL URL: keep state there instead of SQLite in the data dir", func(c *Config) flag.Value { return (*stringValue)(&c.PostgresURL) }},
	{"redis-url", "redisURL", "Redis URL (redis://, rediss://): cluster mode: share rooms' traffic and the single-use token ledger across nodes through Redis", func(c *Config) flag.Value { return (*stringValue)(&c.RedisURL) }},
	{"redis-prefix", "redisPrefix", "prefix of every Redis key and channel, so deployments can share one Redis", func(c *Config) flag.Value { return (*stringValue)(&c.RedisPrefix) }},
}

// UsageError is a mistake on the command line itself — an unknown flag, a
// malformed flag value, a stray argument — as opposed to a setting that is
// well-formed but invalid. Its message is one line.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Load builds the Config from args (without the program name) and the
// environment lookup function (os.LookupEnv in production). When args ask
// for help (-h, --help) it writes the list of flags to help and returns
// flag.ErrHelp; command-line mistakes are *UsageError.
func Load(args []string, lookupEnv func(string) (string, bool), help io.Writer) (Config, error) {
	cfg := Default()
	fs := flag.NewFlagSet("ivschatd", flag.ContinueOnError)
	// The flag package would print the whole usage after any mistake; the
	// caller prints one line instead.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	configPath := fs.String("config", "", "JSON config file (env IVSCHATD_CONFIG)")
	flagValues := make(map[string]flag.Value)
	for _, s := range settings {
		// Parse flags into scratch values first: they must win over the file
		// and the environment, which are applied afterwards.
		var scratch Config
		v := s.value(&scratch)
		flagValues[s.flag] = v
		fs.Var(v, s.flag, fmt.Sprintf("%s (env %s, default %s)", s.usage, EnvName(s.flag), defaultString(s)))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printFlags(help, fs)
			return Config{}, err
		}
		return Config{}, FlagParseError(err)
	}
	if fs.NArg() > 0 {
		return Config{}, &UsageError{Msg: "unexpected arguments: " + strings.Join(fs.Args(), " ")}
	}

	path := *configPath
	if path == "" {
		path, _ = lookupEnv("IVSCHATD_CONFIG")
	}
	if path != "" {
		if err := loadFile(&cfg, path); err != nil {
			return Config{}, err
		}
	}
	for _, s := range settings {
		if v, ok := lookupEnv(EnvName(s.flag)); ok {
			if err := s.value(&cfg).Set(v); err != nil {
				return Config{}, fmt.Errorf("%s: %w", EnvName(s.flag), err)
			}
		}
	}
	id, idOK := lookupEnv("IVSCHATD_ACCESS_KEY_ID")
	secret, secretOK := lookupEnv("IVSCHATD_SECRET_ACCESS_KEY")
	if idOK != secretOK || (idOK && (id == "" || secret == "")) {
		return Config{}, errors.New("IVSCHATD_ACCESS_KEY_ID and IVSCHATD_SECRET_ACCESS_KEY must be set together and not empty")
	}
	if idOK {
		cfg.AccessKeys = append(cfg.AccessKeys, AccessKey{AccessKeyID: id, SecretAccessKey: secret})
	}
	var setErr error
	fs.Visit(func(f *flag.Flag) {
		for _, s := range settings {
			if s.flag == f.Name && setErr == nil {
				setErr = s.value(&cfg).Set(flagValues[s.flag].String())
			}
		}
	})
	if setErr != nil {
		return Config{}, setErr
	}
	return cfg, cfg.Validate()
}

// printFlags lists the flags with the double-dash spelling the
// documentation uses (flag.PrintDefaults writes one dash).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Flags (each can also be set with its environment variable or config-file key):\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		var kind string
		switch f.Value.(type) {
		case *boolValue:
		case *intValue:
			kind = " int"
		case *durationValue:
			kind = " duration"
		case *prefixList:
			kind = " list"
		default:
			kind = " string"
		}
		fmt.Fprintf(w, "  --%s%s\n    \t%s\n", f.Name, kind, f.Usage)
	})
}

// FlagParseError turns an error of flag.FlagSet.Parse into a UsageError
// worded with the double-dash spelling the documentation uses.
func FlagParseError(err error) *UsageError {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return &UsageError{Msg: "unknown flag --" + strings.TrimPrefix(name, "-")}
	}
	for _, prefix := range []string{"for flag -", "for -", "argument: -"} {
		msg = strings.Replace(msg, prefix, prefix+"-", 1)
	}
	return &UsageError{Msg: msg}
}

func defaultString(s setting) string {
	def := Default()
	v := s.value(&def).String()
	if v == "" {
		return "none"
	}
	return v
}

// fileConfig is the config file's structure beyond the scalar settings.
type fileConfig struct {
	AccessKeys []AccessKey        `json:"accessKeys"`
	TokenKeys  []string           `json:"tokenKeys"`
	RateLimits map[string]float64 `json:"rateLimits"`
}

func loadFile(cfg *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	known := map[string]bool{"accessKeys": true, "tokenKeys": true, "rateLimits": true}
	for _, s := range settings {
		known[s.key] = true
		msg, ok := raw[s.key]
		if !ok {
			continue
		}
		var text string
		var str string
		if json.Unmarshal(msg, &str) == nil {
			text = str
		} else {
			text = string(msg) // numbers and booleans
		}
		if err := s.value(cfg).Set(text); err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, s.key, err)
		}
	}
	var unknown []string
	for k := range raw {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config file %s: unknown keys: %s", path, strings.Join(unknown, ", "))
	}
	var fc fileConfig
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&fc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	cfg.AccessKeys = append(cfg.AccessKeys, fc.AccessKeys...)
	cfg.TokenKeys = fc.TokenKeys
	cfg.RateLimits = fc.RateLimits
	return nil
}

var (
	// An AWS region's shape: us-west-2, ap-southeast-1, us-gov-west-1,
	// cn-north-1, eu-central-2. ARNs carry it, and SDKs build endpoint
	// host names from it.
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
)

// Validate checks the whole Config and reports every problem in one error.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	_, _, err := net.SplitHostPort(c.Listen)
	check(err == nil, "listen %q: must be host:port", c.Listen)
	if c.MessagingListen != "" {
		_, _, err := net.SplitHostPort(c.MessagingListen)
		check(err == nil, "messaging-listen %q: must be host:port", c.MessagingListen)
	}
	if c.PprofListen != "" {
		_, _, err := net.SplitHostPort(c.PprofListen)
		check(err == nil, "pprof-listen %q: must be host:port", c.PprofListen)
	}
	check(c.DataDir != "", "data-dir must not be empty")
	check(regionPattern.MatchString(c.Region), "region %q: must look like an AWS region (e.g. us-west-2, eu-central-1)", c.Region)
	check(accountPattern.MatchString(c.AccountID), "account-id %q: must be 12 digits", c.AccountID)
	check((c.TLSCert == "") == (c.TLSKey == ""), "tls-cert and tls-key must be given together")
	check(c.LogLevel == "debug" || c.LogLevel == "info" || c.LogLevel == "warn" || c.LogLevel == "error", "log-level %q: must be debug, info, warn or error", c.LogLevel)
	check(c.LogFormat == "text" || c.LogFormat == "json", "log-format %q: must be text or json", c.LogFormat)
	check(c.TokenTTL >= time.Second, "token-ttl must be at least 1s")
	check(c.MaxRooms > 0, "max-rooms must be positive")
	check(c.MaxLoggingConfigurations > 0, "max-logging-configurations must be positive")
	check(c.MaxConnections > 0, "max-connections must be positive")
	check(c.ShutdownTimeout > 0, "shutdown-timeout must be positive")
	check(c.HTTPReadTimeout > 0, "http-read-timeout must be positive")
	check(c.HTTPIdleTimeout > 0, "http-idle-timeout must be positive")
	check(c.QueueLimit > 0, "queue-limit must be positive")
	check(c.MaxPendingBytes >= 4096, "max-pending-bytes must be at least 4096")
	check(c.SocketSendBuffer == 0 || c.SocketSendBuffer >= 4096, "socket-send-buffer must be 0 (kernel default) or at least 4096")
	check(c.WriteCoalesce >= 0, "write-coalesce must not be negative")
	check(c.PingInterval > 0 && c.IdleTimeout > c.PingInterval, "idle-timeout must be longer than ping-interval")
	check(c.RequestRatePerSecond > 0, "request-rate must be positive")
	check(c.HistoryDefault >= 0 && c.HistoryDefault <= 100, "history-default must be from 0 to 100")
	check(c.ReviewTimeout > 0, "review-timeout must be positive")
	check(c.ChatLogMaxSpoolBytes >= 64<<10, "chatlog-max-spool-bytes must be at least 65536")
	check(c.ChatLogS3BatchInterval > 0, "chatlog-s3-batch-interval must be positive")
	check(c.ChatLogRouteTTL > 0, "chatlog-route-ttl must be positive")
	check((c.DestinationsAccessKeyID == "") == (c.DestinationsSecretKey == ""), "destinations-access-key-id and destinations-secret-access-key must be given together")
	check(c.RedisURL == "" || c.RedisPrefix != "", "redis-prefix must not be empty")
	check((c.LambdaAccessKeyID == "") == (c.LambdaSecretKey == ""), "lambda-access-key-id and lambda-secret-access-key must be given together")
	seen := map[string]bool{}
	for i, k := range c.AccessKeys {
		check(k.AccessKeyID != "" && k.SecretAccessKey != "", "accessKeys[%d]: accessKeyId and secretAccessKey are required", i)
		check(!seen[k.AccessKeyID], "accessKeys[%d]: duplicate accessKeyId %q", i, k.AccessKeyID)
		seen[k.AccessKeyID] = true
	}
	for op, rate := range c.RateLimits {
		check(rate >= 0, "rateLimits.%s must not be negative", op)
	}
	return errors.Join(errs...)
}

type stringValue string

func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) String() string     { return string(*s) }

type intValue int

func (n *intValue) Set(v string) error {
	i, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q is not an integer", v)
	}
	*n = intValue(i)
	return nil
}
func (n *intValue) String() string { return strconv.Itoa(int(*n)) }

type boolValue bool

func (b *boolValue) Set(v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q is not a boolean", v)
	}
	*b = boolValue(x)
	return nil
}
func (b *boolValue) String() string   { return strconv.FormatBool(bool(*b)) }
func (b *boolValue) IsBoolFlag() bool { return true }

// prefixList is a comma-separated list of IP addresses and CIDR prefixes.
type prefixList []netip.Prefix

func (l *prefixList) Set(v string) error {
	var out prefixList
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return fmt.Errorf("%q is not an IP address or CIDR prefix", part)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	*l = out
	return nil
}

func (l *prefixList) String() string {
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

type durationValue time.Duration

func (d *durationValue) Set(v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 60m, 30s)", v)
	}
	*d = durationValue(x)
	return nil
}
func (d *durationValue) String() string { return time.Duration(*d).String() }
