package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/server"
)

// credentialsCmd prints the key pair the server generated in the data dir,
// with the region and endpoint the aws CLI and SDKs need; with --export as
// shell commands for eval "$(ivschatd credentials --export)".
func credentialsCmd(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("ivschatd credentials", flag.ContinueOnError)
	export := flags.Bool("export", false, "print POSIX shell export commands (for eval)")
	endpoint := flags.String("endpoint", "", "endpoint URL clients use (default: derived from --listen, https with IVSCHATD_TLS_CERT/tlsCert; set it behind a proxy)")
	cfg, err := subcommand(flags, `ivschatd credentials [--export] [--data-dir DIR] [--endpoint URL] [--config FILE]

  eval "$(ivschatd credentials --data-dir ./data --export)"`,
		args, []string{"data-dir", "region", "listen"}, stdout)
	if err != nil {
		return err
	}
	key, path, err := server.GeneratedCredentials(cfg.DataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("credentials: %s does not exist: the server generates it on its first start when no key pair is configured "+
			"(IVSCHATD_ACCESS_KEY_ID or accessKeys); use the configured pair otherwise", path)
	}
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	if *endpoint == "" {
		*endpoint = endpointFor(cfg)
	}
	vars := [][2]string{
		{"AWS_ACCESS_KEY_ID", key.AccessKeyID},
		{"AWS_SECRET_ACCESS_KEY", key.SecretAccessKey},
		{"AWS_REGION", cfg.Region},
		{"AWS_DEFAULT_REGION", cfg.Region}, // aws CLI v1 reads only this one
		{"AWS_ENDPOINT_URL", *endpoint},
	}
	if !*export {
		for _, v := range vars {
			fmt.Fprintf(stdout, "%s=%s\n", v[0], v[1])
		}
		return nil
	}
	// A session token or profile left from real AWS would be sent along
	// or take precedence over these variables.
	fmt.Fprintln(stdout, "unset AWS_SESSION_TOKEN AWS_PROFILE")
	for _, v := range vars {
		fmt.Fprintf(stdout, "export %s=%s\n", v[0], shellQuote(v[1]))
	}
	return nil
}

// endpointFor is the URL of the control plane on this host: a wildcard
// listen address (":8080", "0.0.0.0:8080") is reached through loopback.
func endpointFor(cfg config.Config) string {
	host, port, _ := net.SplitHostPort(cfg.Listen) // validated by config.Load
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// shellQuote quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
