// Command ivschatd is a self-hosted chat server that is wire-compatible with
// Amazon IVS Chat. See the README for flags and configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/server"
	"github.com/ivschatd/ivschatd/internal/token"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	var usage *config.UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "ivschatd: %s (see 'ivschatd --help')\n", usage.Msg)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "ivschatd:", oneLine(err))
		os.Exit(1)
	}
}

const usageHeader = `Usage:
  ivschatd [flags]                           run the server
  ivschatd rotate-token-key [--data-dir DIR] add a new newest chat-token key to the
                                             key ring in DIR (restart to use it)
  ivschatd retire-token-keys [--key ID]...   remove keys that stopped sealing more than
                                             --token-ttl ago (refuses keys still needed)
  ivschatd backup --out FILE [--data-dir D]  write an online, consistent backup of the
                                             data dir (databases and keys) to FILE
  ivschatd restore --in FILE --data-dir NEW  restore a backup into a new data dir
  ivschatd credentials [--export]            print the generated key pair of the data dir
                                             (--export: as shell exports for the aws CLI)
  ivschatd healthcheck [--url URL]           exit 0 if the server at URL (default
                                             http://127.0.0.1:8080/readyz) answers 200
  ivschatd version                           print the version, commit and Go version
                                             (also: ivschatd --version)
  ivschatd --help                            print this help

`

// oneLine renders err on a single line: joined errors (several config
// problems) and drivers' multi-line reports (pgx lists every connection
// attempt) become "; "-separated without repeats, so a start failure is one
// line in any log collector.
func oneLine(err error) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || seen[line] {
			continue
		}
		seen[line] = true
		switch {
		case b.Len() == 0:
		case strings.HasSuffix(b.String(), ":"):
			b.WriteString(" ")
		default:
			b.WriteString("; ")
		}
		b.WriteString(line)
	}
	return b.String()
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "rotate-token-key":
			return rotateTokenKey(args[1:], stdout)
		case "retire-token-keys":
			return retireTokenKeys(args[1:], stdout)
		case "backup":
			return backupCmd(args[1:], stdout)
		case "restore":
			return restoreCmd(args[1:], stdout)
		case "credentials":
			return credentialsCmd(args[1:], stdout)
		case "healthcheck":
			return healthcheck(args[1:], stdout)
		case "version", "--version", "-version":
			if len(args) > 1 {
				return &config.UsageError{Msg: "unexpected arguments after " + args[0] + ": " + strings.Join(args[1:], " ")}
			}
			fmt.Fprintln(stdout, versionLine(debug.ReadBuildInfo()))
			return nil
		}
	}
	var flagHelp strings.Builder
	cfg, err := config.Load(args, os.LookupEnv, &flagHelp)
	if errors.Is(err, flag.ErrHelp) {
		// Asked for: normal output, not an error.
		fmt.Fprint(stdout, usageHeader+flagHelp.String())
	}
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the TLS certificate. Subscribed before the server is
	// built: SIGHUP's default action ends the process, and a certificate
	// renewal hook must never take the server down.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	v, rev, _ := buildVersion(debug.ReadBuildInfo())
	srv.SetBuild(v, rev)
	go func() {
		for {
			select {
			case <-hup:
				srv.Reload()
			case <-ctx.Done():
				return
			}
		}
	}()
	return srv.Run(ctx)
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config.Load
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// rotateTokenKey adds a new newest key to the chat-token key ring in the data
// dir. New tokens are sealed with it once the server restarts; tokens sealed
// with older keys keep opening, since every key stays in the ring.
func rotateTokenKey(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ivschatd rotate-token-key", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataDir := fs.String("data-dir", envOr("IVSCHATD_DATA_DIR", "./data"), "data directory of the server (env IVSCHATD_DATA_DIR)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, "Usage: ivschatd rotate-token-key [--data-dir DIR]\n\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return err
		}
		ue := config.FlagParseError(err)
		ue.Msg = "rotate-token-key: " + ue.Msg
		return ue
	}
	if fs.NArg() > 0 {
		return &config.UsageError{Msg: "rotate-token-key: unexpected arguments: " + strings.Join(fs.Args(), " ")}
	}
	kr, err := token.LoadOrCreateKeyring(server.KeyringPath(*dataDir))
	if err != nil {
		return err
	}
	key, err := kr.Rotate()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new chat-token key %s added to %s (%d keys); restart the server to seal new tokens with it\n",
		key.ID, server.KeyringPath(*dataDir), len(kr.Keys()))
	return nil
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
