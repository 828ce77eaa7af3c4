package mcpserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyRotationPickedUpWithoutRestart(t *testing.T) {
	env := newTestEnv(t, nil)
	old := env.token("alice", "mcp:read")
	require.Equal(t, http.StatusOK, env.post(initializeBody, bearer(old)).StatusCode)

	env.iss.addRSAKey() // rotation: new kid, old key kept in the JWKS
	rotated := env.token("alice", "mcp:read")
	res := env.post(initializeBody, bearer(rotated))
	assert.Equal(t, http.StatusOK, res.StatusCode, "unknown kid triggers a JWKS refresh")
	assert.Equal(t, http.StatusOK, env.post(initializeBody, bearer(env.iss.sign(env.iss.keys[0], env.iss.claims("bob", testResource, "mcp:read", env.clock.Now())))).StatusCode)
}

func TestJWKSOutageKeepsCachedKeys(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Auth.JWKSRefreshInterval = time.Second })
	env.iss.down.Store(true)
	hits := env.iss.jwksHits.Load()
	// Let at least one interval refresh fail against the outage.
	require.Eventually(t, func() bool { return env.iss.jwksHits.Load() > hits }, 5*time.Second, 10*time.Millisecond)
	for i := range 3 {
		tok := env.token("alice", "mcp:read") // fresh tokens: not answered from the verified cache
		res := env.post(initializeBody, bearer(tok))
		assert.Equal(t, http.StatusOK, res.StatusCode, "request %d", i)
	}
	assert.NoError(t, env.srv.Ready())
}

func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Auth.UnknownKIDRateLimit = time.Hour })
	start := env.iss.jwksHits.Load()
	other := &testIssuer{t: t}
	other.addRSAKey()
	for range 50 {
		k := *other.current()
		k.kid = uuid.NewString()
		tok := env.iss.sign(&k, env.iss.claims("mallory", testResource, "mcp:read", env.clock.Now()))
		res := env.post(initializeBody, bearer(tok))
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	}
	fetches := env.iss.jwksHits.Load() - start
	assert.LessOrEqual(t, fetches, int64(1), "50 unknown kids cost at most one JWKS fetch per rate-limit interval")
}

func TestStartsWhileAuthorizationServerDown(t *testing.T) {
	iss := newTestIssuer(t)
	iss.down.Store(true)
	env := newTestEnvWithIssuer(t, iss, nil, false)

	res := env.do(http.MethodGet, env.http.URL+"/readyz", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	res = env.do(http.MethodGet, env.http.URL+"/healthz", "", nil)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	res = env.post(initializeBody, bearer(env.token("alice", "mcp:read")))
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.NotEmpty(t, res.Header.Get("Retry-After"))
	// Without a token the challenge needs no keys.
	assert.Equal(t, http.StatusUnauthorized, env.post(initializeBody, nil).StatusCode)

	iss.down.Store(false)
	require.Eventually(t, func() bool { return env.srv.Ready() == nil }, 5*time.Second, 5*time.Millisecond)
	res = env.do(http.MethodGet, env.http.URL+"/readyz", "", nil)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, http.StatusOK, env.post(initializeBody, bearer(env.token("alice", "mcp:read"))).StatusCode)
}

func TestConfiguredJWKSURL(t *testing.T) {
	iss := newTestIssuer(t)
	env := newTestEnvWithIssuer(t, iss, func(c *Config) { c.Auth.JWKSURL = iss.URL() + "/jwks" }, true)
	assert.Equal(t, http.StatusOK, env.post(initializeBody, bearer(env.token("alice", "mcp:read"))).StatusCode)
}

func TestAlgorithmAllowlistFromConfig(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addECKey()
	env := newTestEnvWithIssuer(t, iss, func(c *Config) { c.Auth.Algorithms = []string{"RS256"} }, true)
	res := env.post(initializeBody, bearer(env.token("alice", "mcp:read"))) // ES256
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
}

func TestVerifiedCacheBounded(t *testing.T) {
	clock := newTestClock()
	c := newVerifiedCache(3, time.Minute, clock.Now)
	for i := range 10 {
		c.put(uuid.NewString()+string(rune('a'+i)), &Identity{Subject: "s", ExpiresAt: clock.Now().Add(time.Hour)})
	}
	assert.LessOrEqual(t, len(c.entries), 3)
	c.put("tok", &Identity{Subject: "s", ExpiresAt: clock.Now().Add(10 * time.Second)})
	_, ok := c.get("tok")
	assert.True(t, ok)
	clock.Advance(11 * time.Second)
	_, ok = c.get("tok")
	assert.False(t, ok, "never trusted past exp")
	for k := range c.entries {
		assert.NotContains(t, string(k[:]), "tok", "keys are hashes")
	}
}

func TestIdentityFromClaimsNeedsSubAndExp(t *testing.T) {
	_, err := identityFromClaims(&accessClaims{})
	assert.ErrorIs(t, err, ErrInvalidToken)
	_, err = identityFromClaims(&accessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "a"}})
	assert.ErrorIs(t, err, ErrInvalidToken)
}

func TestAuthServerMetadataURL(t *testing.T) {
	u, err := authServerMetadataURL("http://localhost:3002")
	require.NoError(t, err)
	assert.Equal(t, "http://localhost:3002/.well-known/oauth-authorization-server", u)
	u, err = authServerMetadataURL("https://as.example/tenant1")
	require.NoError(t, err)
	assert.Equal(t, "https://as.example/.well-known/oauth-authorization-server/tenant1", u)
}

func TestJWKSResponseBodyIsBounded(t *testing.T) {
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat(" ", 3*maxJWKSBytes)))
	}))
	defer big.Close()
	client := &http.Client{Transport: limitBody{max: maxJWKSBytes}, Timeout: 5 * time.Second}
	res, err := client.Get(big.URL)
	require.NoError(t, err)
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	require.NoError(t, err)
	assert.Equal(t, int64(maxJWKSBytes), n)
}

// TestCloseAfterUse: metadata and JWKS requests ask for their connection to
// be closed, so no idle connection (and its two goroutines) stays behind,
// and the request given to the transport is left as it was.
func TestCloseAfterUse(t *testing.T) {
	var closes []bool
	var closed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		closes = append(closes, r.Close)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			closed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	client := &http.Client{Transport: closeAfterUse{}, Timeout: 5 * time.Second}
	for range 2 {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		res, err := client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, res.Body)
		require.NoError(t, res.Body.Close())
		assert.False(t, req.Close, "the caller's request is not changed")
	}
	assert.Equal(t, []bool{true, true}, closes)
	require.Eventually(t, func() bool { return closed.Load() == 2 }, 5*time.Second, 5*time.Millisecond,
		"each connection is closed after its one request")
}

// TestAccessTokenTyp: RFC 9068 §4 makes a resource server refuse a JWT not
// typed as an access token; the type is compared case-insensitively with
// or without the "application/" prefix (RFC 8725 §3.11, RFC 7515 §4.1.9).
func TestAccessTokenTyp(t *testing.T) {
	env := newTestEnv(t, nil)
	claims := func() jwt.MapClaims { return env.iss.claims("alice", testResource, "mcp:read", env.clock.Now()) }
	for _, typ := range []string{"at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"} {
		res := env.post(initializeBody, bearer(env.iss.signTyped(env.iss.current(), claims(), typ)))
		assert.Equal(t, http.StatusOK, res.StatusCode, "typ %q: %s", typ, readBody(t, res))
	}
	for _, typ := range []string{"JWT", "", "jwt", "at+jwt ", "application/jwt", "secevent+jwt", "at+jwt; v=1"} {
		res := env.post(initializeBody, bearer(env.iss.signTyped(env.iss.current(), claims(), typ)))
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, "typ %q", typ)
		p := challengeParams(t, res)
		assert.Equal(t, "invalid_token", p["error"], "typ %q", typ)
		assert.Contains(t, p["error_description"], "at+jwt", "typ %q", typ)
		assert.Equal(t, env.srv.resourceMetadataURL, p["resource_metadata"], "typ %q", typ)
	}
	assert.Equal(t, 7.0, counterValue(t, env.srv.metrics.AuthFailures.WithLabelValues("wrong_typ")))
}

func TestAccessTokenTypNonStringRefused(t *testing.T) {
	env := newTestEnv(t, nil)
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, env.iss.claims("alice", testResource, "mcp:read", env.clock.Now()))
	tok.Header["kid"] = env.iss.current().kid
	tok.Header["typ"] = []string{"at+jwt"}
	s, err := tok.SignedString(env.iss.current().priv)
	require.NoError(t, err)
	res := env.post(initializeBody, bearer(s))
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "invalid_token", challengeParams(t, res)["error"])
}

// TestWrongTypCostsNoJWKSFetch: the typ check runs before the key lookup, so
// mistyped tokens with unknown kids cannot make the server refetch the JWKS.
func TestWrongTypCostsNoJWKSFetch(t *testing.T) {
	env := newTestEnv(t, nil)
	start := env.iss.jwksHits.Load()
	k := *env.iss.current()
	k.kid = uuid.NewString()
	tok := env.iss.signTyped(&k, env.iss.claims("alice", testResource, "mcp:read", env.clock.Now()), "JWT")
	require.Equal(t, http.StatusUnauthorized, env.post(initializeBody, bearer(tok)).StatusCode)
	assert.Equal(t, start, env.iss.jwksHits.Load())
}

// TestAccessTokenTypCheckCanBeSwitchedOff: auth.require_at_jwt_typ = false
// is for authorization servers that type access tokens "JWT" (Entra ID v2,
// Keycloak); every other check still applies.
func TestAccessTokenTypCheckCanBeSwitchedOff(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Auth.RequireAtJWTTyp = false })
	now := env.clock.Now()
	for _, typ := range []string{"JWT", "", "at+jwt"} {
		res := env.post(initializeBody, bearer(env.iss.signTyped(env.iss.current(), env.iss.claims("alice", testResource, "mcp:read", now), typ)))
		assert.Equal(t, http.StatusOK, res.StatusCode, "typ %q", typ)
	}
	wrongAud := env.iss.signTyped(env.iss.current(), env.iss.claims("alice", "http://elsewhere/mcp", "mcp:read", now), "JWT")
	assert.Equal(t, http.StatusUnauthorized, env.post(initializeBody, bearer(wrongAud)).StatusCode)
}

// TestScpClaim: a token without scope has its scopes read from scp, as
// Okta (an array) and Entra ID (a string) write it; scope wins when both
// are there; a scp of another shape, or holding a non-scope, is refused
// with 401 and leaves nothing cached.
func TestScpClaim(t *testing.T) {
	env := newTestEnv(t, nil)
	withScp := func(scope string, scp any) string {
		c := env.iss.claims("alice", testResource, scope, env.clock.Now())
		if scope == "" {
			delete(c, "scope")
		}
		c["scp"] = scp
		return env.iss.sign(env.iss.current(), c)
	}
	for name, tc := range map[string]struct {
		tok  string
		want []string
	}{
		"array":         {withScp("", []string{"mcp:read", "mcp:write"}), []string{"mcp:read", "mcp:write"}},
		"string":        {withScp("", "mcp:read mcp:write"), []string{"mcp:read", "mcp:write"}},
		"scope wins":    {withScp("mcp:read", []string{"mcp:read", "mcp:write", "mcp:audit"}), []string{"mcp:read"}},
		"null scp":      {withScp("", nil), []string{}},
		"empty array":   {withScp("", []string{}), []string{}},
		"scope, no scp": {env.token("alice", "mcp:read"), []string{"mcp:read"}},
	} {
		id, err := env.srv.verifier.Verify(context.Background(), tc.tok)
		require.NoError(t, err, name)
		assert.Equal(t, tc.want, id.Scopes, name)
	}
	res := env.post(initializeBody, bearer(withScp("", []string{"mcp:read"})))
	assert.Equal(t, http.StatusOK, res.StatusCode, "scopes from scp satisfy auth.required_scope")

	for name, scp := range map[string]any{
		"number":         42,
		"object":         map[string]string{"a": "b"},
		"mixed array":    []any{"mcp:read", 1},
		"space in scope": []string{"mcp:read mcp:write"},
		"empty scope":    []string{""},
		"quote":          []string{`mcp"read`},
	} {
		tok := withScp("", scp)
		_, err := env.srv.verifier.Verify(context.Background(), tok)
		require.ErrorIs(t, err, ErrInvalidToken, name)
		res := env.post(initializeBody, bearer(tok))
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, name)
		assert.Equal(t, "invalid_token", challengeParams(t, res)["error"], name)
		_, cached := env.srv.verifier.(*jwtVerifier).cache.get(tok)
		assert.False(t, cached, "%s: a refused token is not cached", name)
	}
}
