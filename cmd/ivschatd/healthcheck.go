package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ivschatd/ivschatd/internal/config"
)

// healthcheck asks a running server whether it is ready and exits non-zero
// if not. It exists for container HEALTHCHECKs: the distroless image has no
// shell or curl, so the probe must be the binary itself.
func healthcheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ivschatd healthcheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "URL to probe: /readyz (ready to serve) or /healthz (process alive)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	insecure := fs.Bool("insecure", false, "for an https URL, skip certificate verification (the certificate's name rarely matches 127.0.0.1)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, "Usage: ivschatd healthcheck [--url URL] [--timeout D] [--insecure]\n\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return err
		}
		ue := config.FlagParseError(err)
		ue.Msg = "healthcheck: " + ue.Msg
		return ue
	}
	if fs.NArg() > 0 {
		return &config.UsageError{Msg: "healthcheck: unexpected arguments: " + strings.Join(fs.Args(), " ")}
	}
	client := &http.Client{Timeout: *timeout}
	if *insecure {
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	resp, err := client.Get(*url)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", *url, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "%s: %s\n", *url, resp.Status)
	return nil
}
