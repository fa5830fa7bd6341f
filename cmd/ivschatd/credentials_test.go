package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
)

// TestCredentialsExport: eval "$(ivschatd credentials --export)" in a shell
// gives the aws CLI (when installed) everything it needs to call the server
// — key pair, region, endpoint — and the exports parse back to the generated
// pair. Without a generated pair it says why.
func TestCredentialsExport(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr, _ := runToExit(t, "credentials --data-dir "+dir)
	if code != 1 || !strings.Contains(stderr, "credentials.json does not exist") || !strings.Contains(stderr, "IVSCHATD_ACCESS_KEY_ID") {
		t.Errorf("without a generated pair: exit %d, %s", code, stderr)
	}

	_, base, _ := startChild(t, "--listen 127.0.0.1:0 --region eu-central-1 --data-dir "+dir)
	addr := strings.TrimPrefix(base, "http://")
	// --listen as the server was started (its real port), so the
	// endpoint is derived the documented way.
	code, exports, stderr, _ := runToExit(t, "credentials --export --data-dir "+dir+" --region eu-central-1 --listen "+addr)
	if code != 0 {
		t.Fatalf("credentials --export: exit %d: %s", code, stderr)
	}
	// What the shell sees after eval, printed back one per line.
	cmd := exec.Command("sh", "-c", `eval "$IVSCHATD_EXPORTS" && env | grep '^AWS_' | sort; echo "AWS_SESSION_TOKEN set: ${AWS_SESSION_TOKEN+yes}"`)
	cmd.Env = append(os.Environ(), "IVSCHATD_EXPORTS="+exports, "AWS_SESSION_TOKEN=left-over", "AWS_PROFILE=real-aws")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("eval of\n%s\nfailed: %v\n%s", exports, err, out)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	if env["AWS_REGION"] != "eu-central-1" || env["AWS_DEFAULT_REGION"] != "eu-central-1" || env["AWS_ENDPOINT_URL"] != base {
		t.Errorf("region or endpoint wrong after eval: %v", env)
	}
	if _, ok := env["AWS_PROFILE"]; ok || strings.Contains(string(out), "AWS_SESSION_TOKEN set: yes") {
		t.Errorf("a left-over profile or session token survives the eval:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := ivschat.New(ivschat.Options{Region: env["AWS_REGION"], BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL"]),
		Credentials: credentials.NewStaticCredentialsProvider(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], "")})
	if _, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{Name: aws.String("from-sdk")}); err != nil {
		t.Fatalf("the exported pair does not sign requests the server accepts: %v", err)
	}

	if _, err := exec.LookPath("aws"); err != nil {
		t.Log("the aws CLI is not installed: checked the exports with the SDK only")
		return
	}
	cli := exec.CommandContext(ctx, "sh", "-c", `eval "$IVSCHATD_EXPORTS" && aws ivschat create-room --name from-cli --output text --query arn`)
	cli.Env = append(os.Environ(), "IVSCHATD_EXPORTS="+exports, "AWS_PROFILE=real-aws", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent")
	out, err = cli.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "arn:aws:ivschat:eu-central-1:") {
		t.Fatalf("aws ivschat create-room after eval: %v\n%s", err, out)
	}
}
