package server

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// certSource serves the --tls-cert/--tls-key pair to TLS handshakes and
// replaces it on Reload (SIGHUP). Handshakes read the current pair through an
// atomic pointer, so a reload never waits for, and never disturbs, open
// connections: only handshakes after the swap see the new certificate.
type certSource struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
	reloads           atomic.Uint64 // successful reloads (not the initial load)
	failures          atomic.Uint64 // reloads that kept the old pair
}

// newCertSource reads the pair before anything is served, so a missing or
// unreadable file stops the start instead of the first TLS handshake.
func newCertSource(certFile, keyFile string) (*certSource, error) {
	c := &certSource{certFile: certFile, keyFile: keyFile}
	cert, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cur.Store(cert)
	return c, nil
}

// load reads and checks the pair; errors name the setting at fault.
// tls.X509KeyPair also refuses a key that does not match the certificate.
func (c *certSource) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return nil, settingError("--tls-cert", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return nil, settingError("--tls-key", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return &cert, nil
}

// Reload re-reads the files and swaps the pair in. On failure the current
// pair stays in use, the failure is counted, and the error says why.
func (c *certSource) Reload() (*tls.Certificate, error) {
	cert, err := c.load()
	if err != nil {
		c.failures.Add(1)
		return nil, err
	}
	c.cur.Store(cert)
	c.reloads.Add(1)
	return cert, nil
}

func (c *certSource) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// config is the listeners' TLS configuration.
func (c *certSource) config() *tls.Config {
	return &tls.Config{GetCertificate: c.getCertificate}
}

var (
	tlsReloadsDesc = prometheus.NewDesc("ivschatd_tls_reloads_total",
		"Reloads of --tls-cert/--tls-key (SIGHUP) by result: ok, or failed (the previous certificate stays in use; the log says why).",
		[]string{"result"}, nil)
	tlsNotAfterDesc = prometheus.NewDesc("ivschatd_tls_certificate_expiry_timestamp_seconds",
		"When the certificate in use expires (Unix time), for alerts on renewals that did not happen.", nil, nil)
)

// Describe and Collect make certSource a Prometheus collector.
func (c *certSource) Describe(ch chan<- *prometheus.Desc) {
	ch <- tlsReloadsDesc
	ch <- tlsNotAfterDesc
}

func (c *certSource) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(tlsReloadsDesc, prometheus.CounterValue, float64(c.reloads.Load()), "ok")
	ch <- prometheus.MustNewConstMetric(tlsReloadsDesc, prometheus.CounterValue, float64(c.failures.Load()), "failed")
	if leaf := c.cur.Load().Leaf; leaf != nil {
		ch <- prometheus.MustNewConstMetric(tlsNotAfterDesc, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()))
	}
}
