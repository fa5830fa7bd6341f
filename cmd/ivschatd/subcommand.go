package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/ivschatd/ivschatd/internal/config"
)

// subcommand parses the arguments of an operations subcommand (retire-token-keys,
// backup, credentials, ...). Its own flags are defined on fs; the server
// settings named in shared (and --config) are accepted too and resolved
// exactly as the server resolves them — flag, then IVSCHATD_* environment,
// then config file, then default — so the subcommand run with the server's
// environment sees the server's data dir, token TTL or region.
func subcommand(fs *flag.FlagSet, synopsis string, args []string, shared []string, stdout io.Writer) (config.Config, error) {
	name := fs.Name()
	fs.SetOutput(io.Discard)
	fs.String("config", "", "JSON config file of the server (env IVSCHATD_CONFIG)")
	for _, s := range shared {
		fs.String(s, "", "as the server's --"+s+" (env "+config.EnvName(s)+"; default: the server's)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "Usage: %s\n\n", synopsis)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return config.Config{}, err
		}
		ue := config.FlagParseError(err)
		ue.Msg = strings.TrimPrefix(name, "ivschatd ") + ": " + ue.Msg
		return config.Config{}, ue
	}
	if fs.NArg() > 0 {
		return config.Config{}, &config.UsageError{Msg: strings.TrimPrefix(name, "ivschatd ") + ": unexpected arguments: " + strings.Join(fs.Args(), " ")}
	}
	var pass []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" || slices.Contains(shared, f.Name) {
			pass = append(pass, "--"+f.Name, f.Value.String())
		}
	})
	return config.Load(pass, os.LookupEnv, io.Discard)
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
