package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ivschatd/ivschatd/internal/backup"
	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/server"
)

// backupCmd writes an online, consistent backup of the data dir to one
// archive (docs/operations.md, "Backup and restore").
func backupCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ivschatd backup", flag.ContinueOnError)
	out := fs.String("out", "", "archive to write (tar.gz, mode 0600); replaced if it exists")
	cfg, err := subcommand(fs, "ivschatd backup --out FILE [--data-dir DIR] [--config FILE]", args, []string{"data-dir"}, stdout)
	if err != nil {
		return err
	}
	if *out == "" {
		return &config.UsageError{Msg: "backup: --out is required"}
	}
	databases, files := server.BackupFiles()
	m, err := backup.Create(context.Background(), cfg.DataDir, databases, files, *out)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backed up %s to %s: %s\n", cfg.DataDir, *out, strings.Join(append(m.Databases, m.Files...), ", "))
	if cfg.PostgresURL != "" {
		fmt.Fprintln(stdout, "the store is PostgreSQL (--postgres-url): back it up with pg_dump as well")
	}
	return nil
}

// restoreCmd extracts a backup into a new data dir.
func restoreCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ivschatd restore", flag.ContinueOnError)
	in := fs.String("in", "", "archive written by ivschatd backup")
	cfg, err := subcommand(fs, "ivschatd restore --in FILE --data-dir NEW_DIR", args, []string{"data-dir"}, stdout)
	if err != nil {
		return err
	}
	if *in == "" {
		return &config.UsageError{Msg: "restore: --in is required"}
	}
	m, err := backup.Restore(context.Background(), *in, cfg.DataDir)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "restored %s (made %s) into %s: %s\n", *in, m.Created.Format("2006-01-02T15:04:05Z"), cfg.DataDir,
		strings.Join(append(m.Databases, m.Files...), ", "))
	return nil
}
