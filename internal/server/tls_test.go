package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/gobwas/ws"

	"github.com/ivschatd/ivschatd/internal/config"
)

// With --tls-cert/--tls-key the one listener serves HTTPS for the control
// plane and WSS for chat.
func TestBuiltInTLS(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t)
	// startServer polls /healthz over plain HTTP, so start it by hand here.
	ts := startTLSServer(t, func(c *config.Config) { c.TLSCert, c.TLSKey = certFile, keyFile }, pool)
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c := ivschat.New(ivschat.Options{
		Region: testRegion, BaseEndpoint: aws.String(ts.URL), HTTPClient: httpClient,
		Credentials: credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
	})
	room, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{})
	if err != nil {
		t.Fatalf("CreateRoom over HTTPS: %v", err)
	}
	tok, err := c.CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := ws.Dialer{Protocols: []string{*tok.Token}, TLSConfig: &tls.Config{RootCAs: pool}}
	conn, _, hs, err := d.Dial(ctx, strings.Replace(ts.URL, "https://", "wss://", 1)+"/")
	if err != nil {
		t.Fatalf("WSS handshake: %v", err)
	}
	conn.Close()
	if hs.Protocol != *tok.Token {
		t.Error("sub-protocol not echoed over WSS")
	}
}

func startTLSServer(t *testing.T, edit func(*config.Config), pool *x509.CertPool) *testServer {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AccessKeys = []config.AccessKey{{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}}
	edit(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, discardLogger())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ts := &testServer{t: t, cfg: cfg, URL: "https://" + srv.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Run(ctx) }()
	t.Cleanup(ts.Stop)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		resp, err := client.Get(ts.URL + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return ts
}

// selfSignedCert writes a certificate for 127.0.0.1 and returns the files and
// a pool that trusts it.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ivschatd test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	keyDER, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile, pool
}
