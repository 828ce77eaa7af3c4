package mcpserver

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// introspectionEnv serves introspection answers from a table of opaque
// tokens, counting calls.
type introspectionTable struct {
	mu      sync.Mutex
	answers map[string]map[string]any
	calls   atomic.Int64
}

func (it *introspectionTable) set(token string, answer map[string]any) {
	it.mu.Lock()
	defer it.mu.Unlock()
	it.answers[token] = answer
}

func (it *introspectionTable) lookup(token string) map[string]any {
	it.calls.Add(1)
	it.mu.Lock()
	defer it.mu.Unlock()
	if a, ok := it.answers[token]; ok {
		return a
	}
	return map[string]any{"active": false}
}

func newIntrospectionEnv(t *testing.T) (*testEnv, *introspectionTable) {
	iss := newTestIssuer(t)
	table := &introspectionTable{answers: map[string]map[string]any{}}
	iss.introspec = table.lookup
	env := newTestEnvWithIssuer(t, iss, func(c *Config) {
		c.Auth.Mode = ModeIntrospection
		c.Auth.IntrospectionClientSecret = "introspect-secret"
		c.Auth.IntrospectionCacheTTL = 5 * time.Second
	}, true)
	return env, table
}

func activeAnswer(env *testEnv, sub, aud, scope string) map[string]any {
	now := env.clock.Now()
	return map[string]any{
		"active": true, "sub": sub, "aud": aud, "iss": env.iss.URL(), "scope": scope,
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "client_id": "test-client",
		"jti": "j-" + sub, "email": sub + "@example.com",
	}
}

func TestIntrospectionMode(t *testing.T) {
	env, table := newIntrospectionEnv(t)
	table.set("opaque-alice", activeAnswer(env, "alice", testResource, allScopes))
	cs := env.connect("opaque-alice")
	res, err := cs.CallTool(ctx10s(t), &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	assert.Equal(t, "alice", structured[WhoamiOutput](t, res).Subject)

	table.set("other-aud", activeAnswer(env, "alice", "http://elsewhere/mcp", "mcp:read"))
	wrongIss := activeAnswer(env, "alice", testResource, "mcp:read")
	wrongIss["iss"] = "http://evil.example"
	table.set("wrong-iss", wrongIss)
	noExp := activeAnswer(env, "alice", testResource, "mcp:read")
	delete(noExp, "exp")
	table.set("no-exp", noExp)
	for _, tok := range []string{"unknown", "other-aud", "wrong-iss", "no-exp"} {
		res := env.post(initializeBody, bearer(tok))
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, tok)
		assert.Equal(t, "invalid_token", challengeParams(t, res)["error"], tok)
	}
}

func TestIntrospectionRevocationAfterCacheTTL(t *testing.T) {
	env, table := newIntrospectionEnv(t)
	table.set("opaque", activeAnswer(env, "bob", testResource, "mcp:read"))
	require.Equal(t, http.StatusOK, env.post(initializeBody, bearer("opaque")).StatusCode)
	calls := table.calls.Load()
	require.Equal(t, http.StatusOK, env.post(initializeBody, bearer("opaque")).StatusCode)
	assert.Equal(t, calls, table.calls.Load(), "answered from the short cache")

	table.set("opaque", map[string]any{"active": false}) // revoked
	env.clock.Advance(6 * time.Second)                   // past introspection_cache_ttl
	res := env.post(initializeBody, bearer("opaque"))
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "revoked token refused before it expires")
}

func TestIntrospectionBadClientCredentialsIsUnavailable(t *testing.T) {
	iss := newTestIssuer(t)
	iss.introspec = func(string) map[string]any { return map[string]any{"active": false} }
	env := newTestEnvWithIssuer(t, iss, func(c *Config) {
		c.Auth.Mode = ModeIntrospection
		c.Auth.IntrospectionClientSecret = "wrong"
	}, true)
	res := env.post(initializeBody, bearer("whatever"))
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.NotEmpty(t, res.Header.Get("Retry-After"))
}

func TestAuthDisabledForBenchmarks(t *testing.T) {
	iss := newTestIssuer(t)
	env := newTestEnvWithIssuer(t, iss, func(c *Config) { c.Auth.Enabled = false }, false)
	require.NoError(t, env.srv.Ready())
	cs := env.connect("ignored")
	res, err := cs.CallTool(ctx10s(t), &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	who := structured[WhoamiOutput](t, res)
	assert.Equal(t, anonymousSubject, who.Subject)
	assert.False(t, who.Authenticated)
	res, err = cs.CallTool(ctx10s(t), &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"text": "n"}})
	require.NoError(t, err)
	assert.False(t, res.IsError)
}

// TestIntrospectionIgnoresTyp: in introspection mode the authorization
// server decides; the JWT typ check (a jwt-mode check) does not apply, so a
// JWT-shaped token typed "JWT" that the AS says is active is accepted.
func TestIntrospectionIgnoresTyp(t *testing.T) {
	env, table := newIntrospectionEnv(t)
	require.True(t, env.cfg.Auth.RequireAtJWTTyp)
	tok := env.iss.signTyped(env.iss.current(), env.iss.claims("carol", testResource, "mcp:read", env.clock.Now()), "JWT")
	table.set(tok, activeAnswer(env, "carol", testResource, "mcp:read"))
	res := env.post(initializeBody, bearer(tok))
	assert.Equal(t, http.StatusOK, res.StatusCode, readBody(t, res))
}

// TestIntrospectionRefusesOtherTokenTypes: RFC 7662 §2.1 makes
// token_type_hint only a hint, so an authorization server may answer
// active for a refresh token (pkg/authserver does, with aud, sub, scope and
// exp): that answer's token_type must not let a refresh token in as a bearer
// token. An answer without token_type (it is optional, §2.2) or with an
// access token type is accepted.
func TestIntrospectionRefusesOtherTokenTypes(t *testing.T) {
	env, table := newIntrospectionEnv(t)
	for typ, want := range map[string]int{
		"refresh_token": http.StatusUnauthorized,
		"id_token":      http.StatusUnauthorized,
		"DPoP":          http.StatusUnauthorized, // bound to a key this server does not check
		"urn:ietf:params:oauth:token-type:refresh_token": http.StatusUnauthorized,
		"Bearer":       http.StatusOK,
		"bearer":       http.StatusOK,
		"access_token": http.StatusOK,
		"urn:ietf:params:oauth:token-type:access_token": http.StatusOK,
		"": http.StatusOK,
	} {
		answer := activeAnswer(env, "alice", testResource, "mcp:read")
		if typ != "" {
			answer["token_type"] = typ
		}
		token := "opaque-" + typ
		table.set(token, answer)
		res := env.post(initializeBody, bearer(token))
		require.Equal(t, want, res.StatusCode, "token_type %q", typ)
		if want == http.StatusUnauthorized {
			p := challengeParams(t, res)
			assert.Equal(t, "invalid_token", p["error"], typ)
			assert.Contains(t, p["error_description"], "not an access token", typ)
		}
	}
}
