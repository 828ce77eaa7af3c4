package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "tls-key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile, pool
}

// start runs the binary's run in the background and returns its address.
func start(t *testing.T, args []string) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(a net.Addr) { addrs <- a.String() }) }()
	select {
	case addr := <-addrs:
		return addr, cancel, done
	case err := <-done:
		cancel()
		t.Fatalf("run failed: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start")
	}
	return "", cancel, done
}

func stop(t *testing.T, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("no graceful shutdown")
	}
}

func TestServesTLSAndShutsDownGracefully(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	conf := filepath.Join(dir, "as.toml")
	require.NoError(t, os.WriteFile(conf, []byte(`
[server]
listen = "127.0.0.1:0"
issuer = "https://127.0.0.1"
tls_cert_file = "`+certFile+`"
tls_key_file = "`+keyFile+`"
[keys]
private_key_file = "`+filepath.Join(dir, "keys", "signing.pem")+`"
algorithm = "ES256"
`), 0o600))
	addr, cancel, done := start(t, []string{"--config", conf})
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + addr + "/healthz")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = client.Get("https://" + addr + "/.well-known/oauth-authorization-server")
	require.NoError(t, err)
	defer resp.Body.Close()
	var meta map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&meta))
	assert.Equal(t, "https://127.0.0.1/token", meta["token_endpoint"])
	info, err := os.Stat(filepath.Join(dir, "keys", "signing.pem"))
	require.NoError(t, err, "the signing key was generated and saved")
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	stop(t, cancel, done)
}

func TestEnvironmentAndFlagsOverrideWithoutConfigFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // no config/ here: built-in defaults apply
	t.Setenv("AUTH_SERVER_ISSUER", "http://127.0.0.1:9")
	t.Setenv("AUTH_KEYS_PRIVATE_KEY_FILE", filepath.Join(dir, "k.pem"))
	t.Setenv("AUTH_SERVER_PPROF", "true")
	addr, cancel, done := start(t, []string{"--server.listen", "127.0.0.1:0", "--mock.control_api"})
	resp, err := http.Get("http://" + addr + "/.well-known/openid-configuration")
	require.NoError(t, err)
	defer resp.Body.Close()
	var meta map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&meta))
	assert.Equal(t, "http://127.0.0.1:9", meta["issuer"])
	resp, err = http.Get("http://" + addr + "/control/stats")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get("http://" + addr + "/debug/pprof/cmdline")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "AUTH_SERVER_PPROF=true mounts pprof")
	stop(t, cancel, done)
}

func TestInvalidConfigNamesTheKey(t *testing.T) {
	t.Chdir(t.TempDir())
	for wantKey, flag := range map[string]string{
		"keys.algorithm":   "--keys.algorithm=HS256",
		"storage.driver":   "--storage.driver=postgres",
		"server.issuer":    "--server.issuer=not-a-url",
		"missing --config": "--config=/nonexistent/as.toml",
	} {
		err := run(context.Background(), []string{flag}, nil)
		require.Error(t, err, wantKey)
		if wantKey != "missing --config" {
			assert.Contains(t, err.Error(), wantKey)
		}
	}
	t.Setenv("AUTH_TOKENS_CODE_TTL", "soon")
	err := run(context.Background(), nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "code_ttl")
}
