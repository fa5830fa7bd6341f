package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/ivschatd/ivschatd/internal/server"
	"github.com/ivschatd/ivschatd/internal/token"
)

// retireTokenKeys removes chat-token keys that no valid token can need any
// more (token.RetireKeys): those that stopped sealing more than --token-ttl
// ago. With --key, only the keys named, and it fails, removing nothing, if
// one of them may still be needed.
func retireTokenKeys(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ivschatd retire-token-keys", flag.ContinueOnError)
	var ids listFlag
	fs.Var(&ids, "key", "retire only this key ID (repeatable); fails if it may still be needed")
	cfg, err := subcommand(fs, "ivschatd retire-token-keys [--key ID]... [--data-dir DIR] [--token-ttl D] [--config FILE]",
		args, []string{"data-dir", "token-ttl"}, stdout)
	if err != nil {
		return err
	}
	if len(cfg.TokenKeys) > 0 {
		return errors.New("retire-token-keys: the keys come from tokenKeys in the configuration, not from the data dir: " +
			"remove a key there once --token-ttl has passed since the server stopped sealing with it")
	}
	path := server.KeyringPath(cfg.DataDir)
	retired, kept, err := token.RetireKeys(path, cfg.TokenTTL, time.Now(), ids...)
	if err != nil {
		return fmt.Errorf("retire-token-keys: %w; nothing was removed", err)
	}
	for _, k := range retired {
		fmt.Fprintf(stdout, "retired key %s (created %s)\n", k.ID, k.Created.UTC().Format(time.RFC3339))
	}
	for _, k := range kept {
		fmt.Fprintf(stdout, "kept key %s: %s\n", k.Key.ID, k.Reason)
	}
	if len(retired) == 0 {
		fmt.Fprintf(stdout, "no key retired; %s unchanged\n", path)
		return nil
	}
	fmt.Fprintf(stdout, "%s rewritten; restart the server so that it stops opening tokens sealed by the retired keys\n", path)
	return nil
}
