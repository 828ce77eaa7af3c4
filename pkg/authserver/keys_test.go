package authserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestKeyGeneratedAndSavedPrivately(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "private_key.pem")
	var logs strings.Builder
	k, err := loadOrCreateKey(path, "ES256", slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	assert.Contains(t, logs.String(), "generated a new signing key")
	// Loading it again gives the same key and kid, without generating.
	again, err := loadOrCreateKey(path, "ES256", discard)
	require.NoError(t, err)
	assert.Equal(t, k.kid, again.kid)
}

func writePEM(t *testing.T, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600))
	return path
}

func TestKeyLoadFormats(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	require.NoError(t, err)
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		path, alg string
	}{
		"PKCS#1 RSA": {writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "RS256"},
		"PKCS#8 RSA": {writePEM(t, "PRIVATE KEY", pkcs8), "RS256"},
		"SEC1 EC":    {writePEM(t, "EC PRIVATE KEY", sec1), "ES256"},
	} {
		t.Run(name, func(t *testing.T) {
			k, err := loadOrCreateKey(tc.path, tc.alg, discard)
			require.NoError(t, err)
			assert.Len(t, k.kid, 43)
		})
	}
}

func TestKeyLoadErrorsNameTheKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not a key"), 0o600))
	for name, tc := range map[string]struct{ path, alg, key string }{
		"not PEM":       {garbage, "RS256", "keys.private_key_file"},
		"weak RSA":      {writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "RS256", "keys.algorithm"},
		"alg mismatch":  {writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048)), "ES256", "keys.algorithm"},
		"unknown block": {writePEM(t, "CERTIFICATE", []byte{1}), "RS256", "keys.private_key_file"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadOrCreateKey(tc.path, tc.alg, discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.key)
		})
	}
}

func TestKeySetRotationRetiresOldKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	first, err := loadOrCreateKey("", "ES256", discard)
	require.NoError(t, err)
	second, err := loadOrCreateKey("", "ES256", discard)
	require.NoError(t, err)
	ks := &keySet{current: first}
	ks.rotate(second, now.Add(time.Minute))
	assert.Equal(t, second.kid, ks.signer().kid)
	assert.Len(t, ks.published(now), 2)
	_, ok := ks.find(first.kid, now)
	assert.True(t, ok)
	assert.Len(t, ks.published(now.Add(2*time.Minute)), 1)
	_, ok = ks.find(first.kid, now.Add(2*time.Minute))
	assert.False(t, ok)
}

// TestJWKSBodyFollowsRotation: the cached JWK Set is reused while the
// published keys stay the same and rebuilt when a key is rotated in or a
// retired one expires.
func TestJWKSBodyFollowsRotation(t *testing.T) {
	now := time.Unix(1000, 0)
	first, err := loadOrCreateKey("", "ES256", discard)
	require.NoError(t, err)
	second, err := loadOrCreateKey("", "ES256", discard)
	require.NoError(t, err)
	ks := &keySet{current: first}
	kids := func(at time.Time) []string {
		body, err := ks.jwksBody(at)
		require.NoError(t, err)
		var set struct {
			Keys []struct {
				KID string `json:"kid"`
			} `json:"keys"`
		}
		require.NoError(t, json.Unmarshal(body, &set))
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.KID)
		}
		return out
	}
	assert.Equal(t, []string{first.kid}, kids(now))
	a, err := ks.jwksBody(now)
	require.NoError(t, err)
	b, err := ks.jwksBody(now)
	require.NoError(t, err)
	assert.Same(t, &a[0], &b[0], "unchanged keys: the cached body is served")
	ks.rotate(second, now.Add(time.Minute))
	assert.Equal(t, []string{second.kid, first.kid}, kids(now))
	assert.Equal(t, []string{second.kid}, kids(now.Add(2*time.Minute)))
}

func TestJWKSPublishesOnlyPublicKeys(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/jwks", "/.well-known/jwks.json"} {
		set := decode(t, e.get(path, nil))
		keys := set["keys"].([]any)
		require.Len(t, keys, 1)
		k := keys[0].(map[string]any)
		assert.Equal(t, "RSA", k["kty"])
		assert.Equal(t, "RS256", k["alg"])
		assert.Equal(t, "sig", k["use"])
		assert.NotEmpty(t, k["kid"])
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			assert.NotContains(t, k, private)
		}
	}
}
