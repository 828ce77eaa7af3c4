package mcpserver

// An in-test authorization server: RFC 8414 metadata, a JWKS with counted
// fetches, switchable outage, key rotation and token minting. It stands in
// for pkg/authserver so these tests depend on nothing but the standards.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

type testKey struct {
	kid  string
	alg  string
	priv any
	pub  any
}

type testIssuer struct {
	t        testing.TB
	srv      *httptest.Server
	mu       sync.Mutex
	keys     []*testKey
	down     atomic.Bool
	jwksHits atomic.Int64
	// jwksDelay slows every JWKS answer, as a distant or loaded
	// authorization server would.
	jwksDelay atomic.Int64
	introspec func(token string) map[string]any
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	iss := &testIssuer{t: t}
	iss.addRSAKey()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		if iss.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                           iss.srv.URL,
			"authorization_endpoint":           iss.srv.URL + "/authorize",
			"token_endpoint":                   iss.srv.URL + "/token",
			"jwks_uri":                         iss.srv.URL + "/jwks",
			"introspection_endpoint":           iss.srv.URL + "/introspect",
			"response_types_supported":         []string{"code"},
			"code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.jwksHits.Add(1)
		select {
		case <-time.After(time.Duration(iss.jwksDelay.Load())):
		case <-r.Context().Done():
			return
		}
		if iss.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(iss.jwksJSON())
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok || id != "mcp-service" || secret != "introspect-secret" {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, iss.introspec(r.PostForm.Get("token")))
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

func (iss *testIssuer) URL() string { return iss.srv.URL }

func (iss *testIssuer) addRSAKey() *testKey {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(iss.t, err)
	return iss.addKey(&testKey{kid: uuid.NewString(), alg: "RS256", priv: priv, pub: &priv.PublicKey})
}

func (iss *testIssuer) addECKey() *testKey {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(iss.t, err)
	return iss.addKey(&testKey{kid: uuid.NewString(), alg: "ES256", priv: priv, pub: &priv.PublicKey})
}

func (iss *testIssuer) addKey(k *testKey) *testKey {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.keys = append(iss.keys, k)
	return k
}

// current is the newest signing key.
func (iss *testIssuer) current() *testKey {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.keys[len(iss.keys)-1]
}

func (iss *testIssuer) jwksJSON() []byte {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	var set jwkset.JWKSMarshal
	for _, k := range iss.keys {
		jwk, err := jwkset.NewJWKFromKey(k.pub, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.UseSig},
		})
		require.NoError(iss.t, err)
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	b, err := json.Marshal(set)
	require.NoError(iss.t, err)
	return b
}

// claims returns a valid claim set for subject at now.
func (iss *testIssuer) claims(subject, aud, scope string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": iss.URL(), "sub": subject, "aud": aud,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": uuid.NewString(), "scope": scope, "client_id": "test-client",
		"email": subject + "@example.com", "name": subject + " Example",
	}
}

// sign signs claims with key k as an RFC 9068 access token (kid header
// set, typ at+jwt as the authorization server sets it).
func (iss *testIssuer) sign(k *testKey, claims jwt.MapClaims) string {
	return iss.signTyped(k, claims, "at+jwt")
}

// signTyped signs claims with key k and header typ; an empty typ leaves the
// header without one.
func (iss *testIssuer) signTyped(k *testKey, claims jwt.MapClaims, typ string) string {
	method := jwt.GetSigningMethod(k.alg)
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = k.kid
	if typ == "" {
		delete(tok.Header, "typ")
	} else {
		tok.Header["typ"] = typ
	}
	s, err := tok.SignedString(k.priv)
	require.NoError(iss.t, err)
	return s
}

// token mints a valid token for subject with scope.
func (iss *testIssuer) token(subject, aud, scope string, now time.Time) string {
	return iss.sign(iss.current(), iss.claims(subject, aud, scope, now))
}
