package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// testCert is a self-signed certificate for 127.0.0.1 in PEM.
type testCert struct {
	certPEM, keyPEM []byte
	cert            *x509.Certificate
}

func newTestCert(t *testing.T, serial int64) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "ivschatd test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return testCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		cert:    cert,
	}
}

// TestTLSReloadOnSIGHUP: SIGHUP swaps in the renewed --tls-cert/--tls-key
// for new handshakes while a chat connection opened before keeps receiving;
// a broken renewal (not PEM, or a key of another certificate) keeps the
// current certificate, is logged at ERROR and counted.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, renewed, other := newTestCert(t, 1001), newTestCert(t, 2002), newTestCert(t, 3003)
	install := func(certPEM, keyPEM []byte) {
		// Written in place, as certbot's deploy hooks and cp do.
		if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	install(first.certPEM, first.keyPEM)
	pool := x509.NewCertPool()
	for _, c := range []testCert{first, renewed, other} {
		pool.AddCert(c.cert)
	}
	tlsConf := &tls.Config{RootCAs: pool}

	cmd, base, logs := startChild(t, "--listen 127.0.0.1:0 --data-dir "+t.TempDir()+" --tls-cert "+certFile+" --tls-key "+keyFile,
		"IVSCHATD_ACCESS_KEY_ID=AKIDTLS", "IVSCHATD_SECRET_ACCESS_KEY=tls-secret")
	addr := strings.TrimPrefix(base, "http://")
	base = "https://" + addr
	serial := func() int64 {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, tlsConf)
		if err != nil {
			t.Fatalf("new TLS connection: %v\n%s", err, logs())
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 1001 {
		t.Fatalf("serving serial %d, want 1001", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
	c := ivschat.New(ivschat.Options{Region: "us-west-2", BaseEndpoint: aws.String(base), HTTPClient: httpClient,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTLS", "tls-secret", "")})
	room, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("viewer")})
	if err != nil {
		t.Fatal(err)
	}
	chat, _, _, err := ws.Dialer{Protocols: []string{*tok.Token}, TLSConfig: tlsConf}.Dial(ctx, "wss://"+addr+"/")
	if err != nil {
		t.Fatalf("WSS before the reload: %v", err)
	}
	defer chat.Close()
	// stillReceives: an event sent through the control plane now reaches
	// the chat connection opened with the first certificate.
	stillReceives := func(name string) {
		t.Helper()
		if _, err := c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		chat.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			data, err := wsutil.ReadServerText(chat)
			if err != nil {
				t.Fatalf("chat connection from before the reload, waiting for %s: %v\n%s", name, err, logs())
			}
			if strings.Contains(string(data), name) {
				return
			}
		}
	}
	stillReceives("before-reload")

	hup := func() {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitForLog := func(substr string, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(logs(), substr) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %d× %q in the log:\n%s", n, substr, logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	install(renewed.certPEM, renewed.keyPEM)
	hup()
	waitForLog("TLS certificate reloaded", 1)
	if got := serial(); got != 2002 {
		t.Fatalf("after SIGHUP a new connection sees serial %d, want 2002", got)
	}
	stillReceives("after-reload")

	// Broken renewals: not PEM at all, then the key of another certificate.
	install([]byte("not a certificate\n"), renewed.keyPEM)
	hup()
	waitForLog("TLS certificate reload failed", 1)
	install(other.certPEM, renewed.keyPEM)
	hup()
	waitForLog("TLS certificate reload failed", 2)
	if got := serial(); got != 2002 {
		t.Fatalf("after failed reloads a new connection sees serial %d, want 2002 (kept)", got)
	}
	for _, want := range []string{"level=ERROR", "PEM", "private key does not match public key"} {
		if !strings.Contains(logs(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs())
		}
	}
	stillReceives("after-failed-reload")

	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ivschatd_tls_reloads_total{result="ok"} 1`,
		`ivschatd_tls_reloads_total{result="failed"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	var expiry float64
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "ivschatd_tls_certificate_expiry_timestamp_seconds "); ok {
			expiry, _ = strconv.ParseFloat(v, 64)
		}
	}
	if int64(expiry) != renewed.cert.NotAfter.Unix() {
		t.Errorf("certificate expiry metric %v, want %d (the renewed certificate's)", expiry, renewed.cert.NotAfter.Unix())
	}
}
