package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	cfg, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.DataDir != "./data" || cfg.Region != "us-west-2" || cfg.AccountID != "123456789012" ||
		cfg.TokenTTL != time.Hour || cfg.MaxRooms != 50000 || cfg.MaxLoggingConfigurations != 10 || cfg.MaxConnections != 50000 || cfg.Insecure || !cfg.Console {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestPrecedenceFlagOverEnvOverFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"listen":"127.0.0.1:1","region":"eu-west-1","maxRooms":7,"tokenTTL":"5m","insecureNoAuth":true,
		"accessKeys":[{"accessKeyId":"AKIDFILE","secretAccessKey":"s","policy":{"statements":[{"actions":["ivschat:CreateChatToken"],"resources":["*"]}]}}],
		"rateLimits":{"CreateChatToken":200},"tokenKeys":["k1:AAAA"]}`), 0o600)
	cfg, err := Load(
		[]string{"--config", file, "--listen", "127.0.0.1:3"},
		env(map[string]string{"IVSCHATD_LISTEN": "127.0.0.1:2", "IVSCHATD_REGION": "ap-south-1", "IVSCHATD_ACCESS_KEY_ID": "AKIDENV", "IVSCHATD_SECRET_ACCESS_KEY": "e"}),
		io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:3" {
		t.Errorf("listen = %q, want the flag's", cfg.Listen)
	}
	if cfg.Region != "ap-south-1" {
		t.Errorf("region = %q, want the env's", cfg.Region)
	}
	if cfg.MaxRooms != 7 || cfg.TokenTTL != 5*time.Minute || !cfg.Insecure {
		t.Errorf("file values lost: %+v", cfg)
	}
	if len(cfg.AccessKeys) != 2 || cfg.AccessKeys[0].AccessKeyID != "AKIDFILE" || cfg.AccessKeys[1].AccessKeyID != "AKIDENV" {
		t.Errorf("access keys = %+v", cfg.AccessKeys)
	}
	if !cfg.AccessKeys[0].Policy.Allows("ivschat:CreateChatToken", "arn:aws:ivschat:x:1:room/a") || cfg.AccessKeys[0].Policy.Allows("ivschat:CreateRoom", "*") {
		t.Errorf("policy = %+v", cfg.AccessKeys[0].Policy)
	}
	if cfg.RateLimits["CreateChatToken"] != 200 || len(cfg.TokenKeys) != 1 {
		t.Errorf("rate limits %v, token keys %v", cfg.RateLimits, cfg.TokenKeys)
	}
}

// The web console is on by default and each source can turn it off (or back
// on, over a lower-precedence source).
func TestConsoleSetting(t *testing.T) {
	off := filepath.Join(t.TempDir(), "off.json")
	os.WriteFile(off, []byte(`{"console":false}`), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{"default", nil, nil, true},
		{"flag", []string{"--console=false"}, nil, false},
		{"env", nil, map[string]string{"IVSCHATD_CONSOLE": "false"}, false},
		{"file", []string{"--config", off}, nil, false},
		{"flag over file", []string{"--config", off, "--console"}, nil, true},
		{"env over file", []string{"--config", off}, map[string]string{"IVSCHATD_CONSOLE": "1"}, true},
		{"flag over env", []string{"--console=true"}, map[string]string{"IVSCHATD_CONSOLE": "false"}, true},
	} {
		cfg, err := Load(tc.args, env(tc.env), io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if cfg.Console != tc.want {
			t.Errorf("%s: Console = %v, want %v", tc.name, cfg.Console, tc.want)
		}
	}
	if _, err := Load(nil, env(map[string]string{"IVSCHATD_CONSOLE": "perhaps"}), io.Discard); err == nil || !strings.Contains(err.Error(), "IVSCHATD_CONSOLE") {
		t.Errorf("IVSCHATD_CONSOLE=perhaps: %v", err)
	}
}

func TestEnvFileSelection(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"dataDir":"/tmp/x"}`), 0o600)
	cfg, err := Load(nil, env(map[string]string{"IVSCHATD_CONFIG": file}), io.Discard)
	if err != nil || cfg.DataDir != "/tmp/x" {
		t.Fatalf("cfg %+v err %v", cfg, err)
	}
}

func TestInvalid(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(body string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("c%d.json", n))
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad listen", []string{"--listen", "nope"}, nil, "listen"},
		{"bad account", []string{"--account-id", "12"}, nil, "account-id"},
		{"bad region", []string{"--region", "US_WEST"}, nil, "region"},
		{"bad int", []string{"--max-rooms", "many"}, nil, "not an integer"},
		{"bad duration", nil, map[string]string{"IVSCHATD_TOKEN_TTL": "soon"}, "IVSCHATD_TOKEN_TTL"},
		{"tls half", []string{"--tls-cert", "c.pem"}, nil, "tls-cert and tls-key"},
		{"key without secret", nil, map[string]string{"IVSCHATD_ACCESS_KEY_ID": "A"}, "must be set together"},
		{"unknown file key", []string{"--config", write(`{"lisen":"x"}`)}, nil, "unknown keys: lisen"},
		{"file not json", []string{"--config", write(`{`)}, nil, "config file"},
		{"duplicate keys", []string{"--config", write(`{"accessKeys":[{"accessKeyId":"A","secretAccessKey":"s"},{"accessKeyId":"A","secretAccessKey":"t"}]}`)}, nil, "duplicate"},
		{"stray argument", []string{"serve"}, nil, "unexpected arguments"},
		{"log level", []string{"--log-level", "loud"}, nil, "log-level"},
		{"http read timeout", []string{"--http-read-timeout", "0s"}, nil, "http-read-timeout"},
		{"http idle timeout", nil, map[string]string{"IVSCHATD_HTTP_IDLE_TIMEOUT": "-1s"}, "http-idle-timeout"},
		{"history default too big", []string{"--history-default", "101"}, nil, "history-default"},
		{"history default negative", nil, map[string]string{"IVSCHATD_HISTORY_DEFAULT": "-1"}, "history-default"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestUsageNamesEnvAndDefault(t *testing.T) {
	var b strings.Builder
	if _, err := Load([]string{"-h"}, env(nil), &b); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"--listen string", "IVSCHATD_LISTEN", "127.0.0.1:8080", "--insecure-no-auth\n", "IVSCHATD_INSECURE_NO_AUTH", "--console\n", "IVSCHATD_CONSOLE, default true", "--max-rooms int", "--token-ttl duration"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, b.String())
		}
	}
}

// Mistakes on the command line itself are UsageErrors with one line, in
// the documented double-dash spelling, and print nothing else.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "unknown flag --nope"},
		{[]string{"-nope"}, "unknown flag --nope"},
		{[]string{"--max-rooms", "many"}, `invalid value "many" for flag --max-rooms: "many" is not an integer`},
		{[]string{"--insecure-no-auth=maybe"}, `invalid boolean value "maybe" for --insecure-no-auth: "maybe" is not a boolean`},
		{[]string{"--listen"}, "flag needs an argument: --listen"},
		{[]string{"serve"}, "unexpected arguments: serve"},
	} {
		var out strings.Builder
		_, err := Load(tc.args, env(nil), &out)
		var ue *UsageError
		if !errors.As(err, &ue) || ue.Msg != tc.want || out.Len() != 0 {
			t.Errorf("%v: %v (output %q), want UsageError %q", tc.args, err, out.String(), tc.want)
		}
	}
}

func TestRegionShape(t *testing.T) {
	for _, ok := range []string{"us-west-2", "us-east-1", "ap-southeast-1", "us-gov-west-1", "cn-north-1", "eu-central-2", "ap-northeast-3", "me-south-1", "il-central-1", "us-isob-east-1"} {
		if _, err := Load([]string{"--region", ok}, env(nil), io.Discard); err != nil {
			t.Errorf("region %s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "us-west", "US-WEST-2", "us_west_2", "uswest2", "us-west-2a", "u-west-2", "us-west-2 ", "us--west-2", "local"} {
		_, err := Load([]string{"--region", bad}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "region") || !strings.Contains(err.Error(), "AWS region") {
			t.Errorf("region %q: %v, want an error naming the setting", bad, err)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	cfg, err := Load([]string{"--trusted-proxies", "10.0.0.0/8, 127.0.0.1,::1, 192.168.1.7/24"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.TrustedProxies.String(); got != "10.0.0.0/8,127.0.0.1/32,::1/128,192.168.1.0/24" {
		t.Errorf("trusted proxies = %s", got)
	}
	if _, err := Load([]string{"--trusted-proxies", "10.0.0.0/8,proxy.local"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "proxy.local") {
		t.Errorf("bad entry: %v", err)
	}
}

func TestReviewWebhookAllow(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"reviewWebhookAllow":"hooks.example.com, 10.0.0.0/8"}`), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"file", []string{"--config", file}, nil, "hooks.example.com,10.0.0.0/8"},
		{"env", nil, map[string]string{"IVSCHATD_REVIEW_WEBHOOK_ALLOW": "*.Example.com,127.0.0.1"}, "*.example.com,127.0.0.1"},
		{"flag over env", []string{"--review-webhook-allow", "::1"}, map[string]string{"IVSCHATD_REVIEW_WEBHOOK_ALLOW": "a.example"}, "::1"},
		{"default", nil, nil, ""},
	} {
		cfg, err := Load(tc.args, env(tc.env), io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := cfg.ReviewWebhookAllow.String(); got != tc.want {
			t.Errorf("%s: allow-list = %q, want %q", tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{"169.254.169.254", "hooks.example.com:443", "fd00:ec2::254"} {
		_, err := Load([]string{"--review-webhook-allow", bad}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

// The recent-messages default is off unless a source sets it; every source
// can.
func TestHistoryDefault(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"historyDefault":20}`), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{"default", nil, nil, 0},
		{"flag", []string{"--history-default", "50"}, nil, 50},
		{"env", nil, map[string]string{"IVSCHATD_HISTORY_DEFAULT": "100"}, 100},
		{"file", []string{"--config", file}, nil, 20},
		{"env over file", []string{"--config", file}, map[string]string{"IVSCHATD_HISTORY_DEFAULT": "0"}, 0},
	} {
		cfg, err := Load(tc.args, env(tc.env), io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if cfg.HistoryDefault != tc.want {
			t.Errorf("%s: HistoryDefault = %d, want %d", tc.name, cfg.HistoryDefault, tc.want)
		}
	}
}
