package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// selfSigned makes a CA-less self-signed certificate for 127.0.0.1, written as PEM files
// in dir; it returns the server config and a pool trusting it.
func selfSigned(t testing.TB, dir string) (*tls.Config, *x509.CertPool, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "chronik-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, pool, certFile, keyFile
}

func TestFranzOverTLS(t *testing.T) {
	srv, pool, _, _ := selfSigned(t, t.TempDir())
	b := startBroker(t, withTLS(srv))
	clientTLS := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	prod := newClient(t, b.Addr(), kgo.DialTLSConfig(clientTLS), kgo.AllowAutoTopicCreation())
	produced := produceN(t, prod, "tls-topic", 200, 300)
	checkSame(t, produced, consumeAll(t, b.Addr(), "tls-topic", 200, kgo.DialTLSConfig(clientTLS)))

	// A plaintext client cannot talk to the TLS listener, and the broker survives it.
	plain := newClient(t, b.Addr(), kgo.RetryTimeout(time.Second), kgo.RequestRetries(1))
	ctx := testCtx(t, 5*time.Second)
	if err := plain.Ping(ctx); err == nil {
		t.Fatal("plaintext ping to a TLS listener succeeded")
	}
	checkSame(t, produced, consumeAll(t, b.Addr(), "tls-topic", 200, kgo.DialTLSConfig(clientTLS)))
}
