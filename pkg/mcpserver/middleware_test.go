package mcpserver

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const allScopes = "mcp:read mcp:write mcp:audit"

func TestValidTokenPasses(t *testing.T) {
	env := newTestEnv(t, nil)
	res := env.post(initializeBody, bearer(env.token("alice", "mcp:read")))
	assert.Equal(t, http.StatusOK, res.StatusCode, readBody(t, res))
	assert.NotEmpty(t, res.Header.Get("Mcp-Session-Id"))
}

func TestES256TokenPasses(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addECKey()
	env := newTestEnvWithIssuer(t, iss, nil, true)
	res := env.post(initializeBody, bearer(env.token("alice", "mcp:read")))
	assert.Equal(t, http.StatusOK, res.StatusCode, readBody(t, res))
}

// challengeParams parses the WWW-Authenticate Bearer challenge.
func challengeParams(t *testing.T, res *http.Response) map[string]string {
	t.Helper()
	chs, err := oauthex.ParseWWWAuthenticate(res.Header.Values("WWW-Authenticate"))
	require.NoError(t, err)
	require.Len(t, chs, 1)
	assert.Equal(t, "bearer", chs[0].Scheme)
	return chs[0].Params
}

func TestMissingTokenChallenge(t *testing.T) {
	env := newTestEnv(t, nil)
	for _, headers := range []map[string]string{nil, {"Authorization": "Basic YWxpY2U6c2VjcmV0"}} {
		res := env.post(initializeBody, headers)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		p := challengeParams(t, res)
		assert.Equal(t, "http://localhost:3003/.well-known/oauth-protected-resource/mcp", p["resource_metadata"])
		assert.NotContains(t, p, "error", "no error code when no token was sent (RFC 6750 §3.1)")
		assert.Equal(t, "mcp:read", p["scope"], "the scope to connect, so clients ask for no more (least privilege)")
	}
}

// TestUnauthorizedChallengeScope: every 401 names what the request needs,
// as a 403 does: the required scope, plus the scopes of a tool it calls; a
// client that asks for exactly that gets in with one authorization.
// offline_access is never in a challenge (MCP authorization 2026-07-28).
func TestUnauthorizedChallengeScope(t *testing.T) {
	env := newTestEnv(t, nil)
	addNote := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add_note","arguments":{"text":"x"}}}`
	echo := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`
	cases := []struct {
		name, body, wantScope, wantError string
		headers                          map[string]string
	}{
		{"no token, initialize", initializeBody, "mcp:read", "", nil},
		{"no token, add_note", addNote, "mcp:read mcp:write", "", nil},
		{"no token, echo", echo, "mcp:read", "", nil},
		{"bad token, add_note", addNote, "mcp:read mcp:write", "invalid_token", bearer("garbage")},
		{"expired token, add_note", addNote, "mcp:read mcp:write", "invalid_token",
			bearer(env.iss.sign(env.iss.current(), func() jwt.MapClaims {
				c := env.iss.claims("alice", testResource, allScopes, env.clock.Now())
				c["exp"] = env.clock.Now().Add(-time.Hour).Unix()
				return c
			}()))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := env.post(tc.body, tc.headers)
			require.Equal(t, http.StatusUnauthorized, res.StatusCode)
			p := challengeParams(t, res)
			assert.Equal(t, tc.wantScope, p["scope"])
			if tc.wantError == "" {
				assert.NotContains(t, p, "error")
			} else {
				assert.Equal(t, tc.wantError, p["error"])
			}
			assert.NotContains(t, strings.Fields(p["scope"]), "offline_access")
		})
	}
	t.Run("audit-logs", func(t *testing.T) {
		res := env.do(http.MethodGet, env.http.URL+"/audit-logs", "", nil)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		assert.Equal(t, "mcp:audit", challengeParams(t, res)["scope"])
	})
}

func TestRefusedTokens(t *testing.T) {
	env := newTestEnv(t, nil)
	iss := env.iss
	now := env.clock.Now()
	key := iss.current()
	valid := func() jwt.MapClaims { return iss.claims("alice", testResource, "mcp:read", now) }
	with := func(mod func(jwt.MapClaims)) string {
		c := valid()
		mod(c)
		return iss.sign(key, c)
	}
	otherKey := &testIssuer{t: t}
	otherKey.addRSAKey()
	unknownKid := otherKey.current()

	pubDER, err := x509.MarshalPKIXPublicKey(key.pub)
	require.NoError(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, valid())
	hs.Header["kid"] = key.kid
	hs.Header["typ"] = "at+jwt"
	hsToken, err := hs.SignedString(pubPEM)
	require.NoError(t, err)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, valid())
	none.Header["kid"] = key.kid
	none.Header["typ"] = "at+jwt"
	noneToken, err := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	good := iss.sign(key, valid())
	parts := strings.Split(good, ".")
	sig := []byte(parts[2])
	sig[10] ^= 1
	if sig[10] == '.' || sig[10] == '=' {
		sig[10] = 'A'
	}
	tampered := parts[0] + "." + parts[1] + "." + string(sig)
	noKid := jwt.NewWithClaims(jwt.SigningMethodRS256, valid())
	noKid.Header["typ"] = "at+jwt"
	noKidToken, err := noKid.SignedString(key.priv)
	require.NoError(t, err)

	cases := map[string]string{
		"malformed":         "not-a-jwt",
		"garbage segments":  "a.b.c",
		"expired":           with(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() }),
		"not yet valid":     with(func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() }),
		"issued in future":  with(func(c jwt.MapClaims) { c["iat"] = now.Add(5 * time.Minute).Unix() }),
		"wrong issuer":      with(func(c jwt.MapClaims) { c["iss"] = "http://evil.example" }),
		"issuer with slash": with(func(c jwt.MapClaims) { c["iss"] = iss.URL() + "/" }),
		"wrong audience":    with(func(c jwt.MapClaims) { c["aud"] = "http://localhost:9999/mcp" }),
		"audience list without us": with(func(c jwt.MapClaims) {
			c["aud"] = []string{"http://a.example", "http://b.example"}
		}),
		"missing exp":       with(func(c jwt.MapClaims) { delete(c, "exp") }),
		"missing iss":       with(func(c jwt.MapClaims) { delete(c, "iss") }),
		"missing aud":       with(func(c jwt.MapClaims) { delete(c, "aud") }),
		"missing sub":       with(func(c jwt.MapClaims) { delete(c, "sub") }),
		"alg none":          noneToken,
		"HS256 with pubkey": hsToken,
		"unknown kid":       iss.sign(unknownKid, valid()),
		"tampered":          tampered,
		"no kid":            noKidToken,
		"jku ignored": func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, valid())
			tok.Header["kid"] = uuid.NewString()
			tok.Header["typ"] = "at+jwt"
			tok.Header["jku"] = "http://127.0.0.1:1/jwks"
			s, err := tok.SignedString(unknownKid.priv)
			require.NoError(t, err)
			return s
		}(),
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			res := env.post(initializeBody, bearer(token))
			require.Equal(t, http.StatusUnauthorized, res.StatusCode, readBody(t, res))
			p := challengeParams(t, res)
			assert.Equal(t, "invalid_token", p["error"])
			assert.Equal(t, env.srv.resourceMetadataURL, p["resource_metadata"])
		})
	}
	t.Run("aud list containing us passes", func(t *testing.T) {
		tok := with(func(c jwt.MapClaims) { c["aud"] = []string{"http://other.example", testResource} })
		res := env.post(initializeBody, bearer(tok))
		assert.Equal(t, http.StatusOK, res.StatusCode)
	})
	t.Run("within leeway passes", func(t *testing.T) {
		tok := with(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() })
		res := env.post(initializeBody, bearer(tok))
		assert.Equal(t, http.StatusOK, res.StatusCode)
	})
}

func TestExpiryFollowsInjectedClock(t *testing.T) {
	env := newTestEnv(t, nil)
	tok := env.token("alice", "mcp:read")
	require.Equal(t, http.StatusOK, env.post(initializeBody, bearer(tok)).StatusCode)
	env.clock.Advance(time.Hour + time.Minute) // past exp + leeway; the cache must not keep it alive
	res := env.post(initializeBody, bearer(tok))
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "invalid_token", challengeParams(t, res)["error"])
}

func TestMalformedAuthorizationHeaders(t *testing.T) {
	env := newTestEnv(t, nil)
	for _, h := range []string{"Bearer", "Bearer a b", "Bearer  "} {
		res := env.post(initializeBody, map[string]string{"Authorization": h})
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, h)
		if strings.TrimSpace(h) != "Bearer" {
			assert.Equal(t, "invalid_token", challengeParams(t, res)["error"], h)
		}
	}
}

func TestTokenInQueryStringRefused(t *testing.T) {
	env := newTestEnv(t, nil)
	tok := env.token("alice", "mcp:read")
	res := env.do(http.MethodPost, env.mcpURL()+"?access_token="+tok, initializeBody, nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "a query token counts as no credentials")
	p := challengeParams(t, res)
	assert.NotEmpty(t, p["resource_metadata"])
	assert.Contains(t, readBody(t, res), "Authorization header")
	// With a header token too: two methods at once (RFC 6750 §2), 400.
	res = env.do(http.MethodPost, env.mcpURL()+"?access_token="+tok, initializeBody, bearer(tok))
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_request", challengeParams(t, res)["error"])
}

func TestInsufficientScope(t *testing.T) {
	env := newTestEnv(t, nil)
	readOnly := env.token("alice", "mcp:read")
	call := func(tool string) string {
		return `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + tool + `","arguments":{"text":"x"}}}`
	}
	res := env.post(call("add_note"), bearer(readOnly))
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	p := challengeParams(t, res)
	assert.Equal(t, "insufficient_scope", p["error"])
	assert.Equal(t, "mcp:read mcp:write", p["scope"], "scope lists every scope the call needs")
	assert.Equal(t, env.srv.resourceMetadataURL, p["resource_metadata"])

	// Batches: one tools/call in the batch needing write is enough to refuse.
	batch := "[" + call("echo") + "," + call("add_note") + "]"
	res = env.post(batch, bearer(readOnly))
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Equal(t, "mcp:read mcp:write", challengeParams(t, res)["scope"])

	// Case-variant keys cannot smuggle a call past the check.
	smuggle := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","Name":"add_note","arguments":{"text":"x"}}}`
	res = env.post(smuggle, bearer(readOnly))
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	// A token without the base scope cannot connect at all.
	res = env.post(initializeBody, bearer(env.token("alice", "profile")))
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	p = challengeParams(t, res)
	assert.Equal(t, "insufficient_scope", p["error"])
	assert.Equal(t, "mcp:read", p["scope"])

	// Lacking both: one answer names both, so one step-up suffices.
	res = env.post(call("add_note"), bearer(env.token("alice", "profile")))
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	p = challengeParams(t, res)
	assert.Equal(t, "insufficient_scope", p["error"])
	assert.Equal(t, "mcp:read mcp:write", p["scope"])
	res = env.post(call("add_note"), bearer(env.token("alice", "mcp:read mcp:write")))
	assert.Equal(t, http.StatusOK, res.StatusCode, "the challenged scopes are enough")
}

func TestConfiguredToolScopes(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.Tools = map[string]ToolConfig{"echo": {Scopes: []string{"mcp:write"}}}
	})
	res := env.post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`,
		bearer(env.token("alice", "mcp:read")))
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Equal(t, "mcp:read mcp:write", challengeParams(t, res)["scope"])
}

func TestSessionTokenHeader(t *testing.T) {
	off := newTestEnv(t, nil)
	res := off.post(initializeBody, map[string]string{"X-Session-Token": off.token("alice", "mcp:read")})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "off by default")

	on := newTestEnv(t, func(c *Config) { c.Auth.AcceptSessionTokenHeader = true })
	res = on.post(initializeBody, map[string]string{"X-Session-Token": on.token("alice", "mcp:read")})
	require.Equal(t, http.StatusOK, res.StatusCode, readBody(t, res))
	res = on.post(initializeBody, map[string]string{"X-Session-Token": "garbage"})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "invalid_token", challengeParams(t, res)["error"])
}

func TestBodyLimit(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Server.MaxBodyBytes = 1024 })
	big := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("a", 2048) + `"}}`
	res := env.post(big, bearer(env.token("alice", "mcp:read")))
	assert.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
}

func TestOversizedBatchRefused(t *testing.T) {
	env := newTestEnv(t, nil)
	msgs := make([]string, maxBatchMessages+1)
	for i := range msgs {
		msgs[i] = `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	}
	res := env.post("["+strings.Join(msgs, ",")+"]", bearer(env.token("alice", "mcp:read")))
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
}

// visibleASCIIByByte is the plain definition visibleASCII must agree with.
func visibleASCIIByByte(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > 0x7f {
			return false
		}
	}
	return true
}

// TestVisibleASCII8Exhaustive checks the eight-bytes-at-a-time test against
// the bytewise one for every pair of byte values at every pair of positions
// in a word of otherwise visible bytes (borrows between bytes are where such
// a test goes wrong), and for every single byte value at every position.
func TestVisibleASCII8Exhaustive(t *testing.T) {
	const ok = 0x7e21_7e21_7e21_7e21 // visible bytes, the words around v
	for _, fill := range []byte{'!', 'a', '~', 0x7f} {
		word := [8]byte{}
		for i := range word {
			word[i] = fill
		}
		for i := range 8 {
			for j := i + 1; j < 8; j++ {
				for a := range 256 {
					for b := range 256 {
						w := word
						w[i], w[j] = byte(a), byte(b)
						s := string(w[:])
						var v uint64
						for k := 7; k >= 0; k-- {
							v = v<<8 | uint64(w[k])
						}
						want := visibleASCIIByByte(s)
						if got := visibleASCII8(v); got != want {
							t.Fatalf("visibleASCII8(%q) = %v, want %v", s, got, want)
						}
						if got := visibleASCIIBits(ok, v, ok, ok) == 0; got != want {
							t.Fatalf("visibleASCIIBits(%q) = %v, want %v", s, got, want)
						}
					}
				}
			}
		}
	}
}

// TestVisibleASCIIEveryByteEveryPosition runs the whole function (words and
// the tail) over a token-sized string with one byte changed.
func TestVisibleASCIIEveryByteEveryPosition(t *testing.T) {
	// Two 32-byte steps, one word and a 3-byte tail.
	base := strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 4)[:75]
	for pos := range len(base) {
		for c := range 256 {
			b := []byte(base)
			b[pos] = byte(c)
			s := string(b)
			require.Equal(t, visibleASCIIByByte(s), visibleASCII(s), "byte %#x at %d", c, pos)
		}
	}
	assert.True(t, visibleASCII(""))
}

// TestWithVerifiedAuthorization: what the SDK's middleware and the tools
// see of a verified request holds no bearer token; the other headers stay,
// and each request gets an Authorization slice of its own.
func TestWithVerifiedAuthorization(t *testing.T) {
	newRequest := func() *http.Request {
		r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", nil)
		require.NoError(t, err)
		r.Header.Set("Authorization", "Bearer secret-token")
		r.Header.Set("X-Session-Token", "secret-token")
		r.Header.Set("Mcp-Session-Id", "s1")
		return r
	}
	r := newRequest()
	got := withVerifiedAuthorization(r)
	assert.Same(t, r, got, "changed in place, not copied")
	assert.Equal(t, []string{verifiedAuthorization}, got.Header.Values("Authorization"))
	assert.Empty(t, got.Header.Values("X-Session-Token"))
	assert.Equal(t, "s1", got.Header.Get("Mcp-Session-Id"))
	for k, vs := range got.Header {
		for _, v := range vs {
			assert.NotContains(t, v, "secret-token", "header %s", k)
		}
	}

	got.Header["Authorization"][0] = "changed by a handler"
	next := withVerifiedAuthorization(newRequest())
	assert.Equal(t, []string{verifiedAuthorization}, next.Header.Values("Authorization"), "not shared between requests")
}

// TestSDKAndToolsNeverSeeTheToken drives the real chain in front of the SDK
// (audit, body peek, access check, the SDK's RequireBearerToken) with the
// token in Authorization and in X-Session-Token: what reaches the SDK's
// handler (whose headers tools get as RequestExtra.Header) carries the
// stand-in, no token anywhere, and the caller as TokenInfo.
func TestSDKAndToolsNeverSeeTheToken(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Auth.AcceptSessionTokenHeader = true })
	var seen *http.Request
	h := env.srv.auditMiddleware(env.srv.peekBody(env.srv.requireMCPAccess(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) { seen = r; w.WriteHeader(http.StatusOK) }))))
	tok := env.token("alice", "mcp:read")
	signature := tok[strings.LastIndex(tok, ".")+1:]
	for name, headers := range map[string]map[string]string{
		"Authorization":   bearer(tok),
		"X-Session-Token": {"X-Session-Token": tok},
	} {
		seen = nil
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(initializeBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		res := httptest.NewRecorder()
		h.ServeHTTP(res, req)
		require.Equal(t, http.StatusOK, res.Code, name)
		require.NotNil(t, seen, name)
		assert.Equal(t, []string{verifiedAuthorization}, seen.Header.Values("Authorization"), name)
		assert.Empty(t, seen.Header.Values("X-Session-Token"), name)
		for k, vs := range seen.Header {
			for _, v := range vs {
				assert.NotContains(t, v, signature, "%s: header %s", name, k)
			}
		}
		info := auth.TokenInfoFromContext(seen.Context())
		require.NotNil(t, info, name)
		assert.Equal(t, "alice", info.UserID, name)
		// The stages before the check, which see the request after it,
		// still know the caller: the audit record names alice.
		recs := env.srv.audit.Query(auditQuery{Limit: 1})
		require.Len(t, recs, 1, name)
		assert.Equal(t, "alice", recs[0].Subject, name)
		assert.Equal(t, OutcomeAllowed, recs[0].Outcome, name)
		assert.Equal(t, "initialize", recs[0].Method, name)
	}
}
