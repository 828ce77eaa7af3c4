package mcpserver

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOriginValidation(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.Server.AllowedOrigins = []string{"https://app.example.com"}
		c.Server.CORSOrigins = []string{"https://inspector.example.com"}
	})
	tok := env.token("alice", "mcp:read")
	cases := map[string]int{
		"http://evil.example.com":       http.StatusForbidden,
		"null":                          http.StatusForbidden,
		"http://localhost:6274":         http.StatusOK,
		"http://127.0.0.1:9999":         http.StatusOK,
		"https://app.example.com":       http.StatusOK,
		"https://APP.example.com":       http.StatusOK,
		"https://inspector.example.com": http.StatusOK,
		"https://app.example.com.evil":  http.StatusForbidden,
	}
	for origin, want := range cases {
		headers := bearer(tok)
		headers["Origin"] = origin
		res := env.post(initializeBody, headers)
		assert.Equal(t, want, res.StatusCode, origin)
	}
	// No Origin (non-browser clients) is fine.
	assert.Equal(t, http.StatusOK, env.post(initializeBody, bearer(tok)).StatusCode)
}

func TestForeignOriginRefusedBeforeAuth(t *testing.T) {
	env := newTestEnv(t, nil)
	res := env.post(initializeBody, map[string]string{"Origin": "http://evil.example.com"})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
}

func TestCORS(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Server.CORSOrigins = []string{"http://localhost:6274"} })
	res := env.do(http.MethodOptions, env.mcpURL(), "", map[string]string{
		"Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization, content-type, mcp-session-id",
	})
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	assert.Equal(t, "http://localhost:6274", res.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, res.Header.Get("Access-Control-Allow-Headers"), "Authorization")
	assert.Contains(t, res.Header.Get("Access-Control-Allow-Headers"), "Mcp-Session-Id")

	// The 401 a browser client gets exposes the challenge and session id.
	res = env.post(initializeBody, map[string]string{"Origin": "http://localhost:6274"})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "http://localhost:6274", res.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, res.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate")
	assert.Contains(t, res.Header.Get("Access-Control-Expose-Headers"), "Mcp-Session-Id")

	// Loopback origins not configured for CORS are accepted but get no CORS headers.
	headers := bearer(env.token("alice", "mcp:read"))
	headers["Origin"] = "http://localhost:1234"
	res = env.post(initializeBody, headers)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Empty(t, res.Header.Get("Access-Control-Allow-Origin"))
}

func TestResourceMetadata(t *testing.T) {
	env := newTestEnv(t, nil)
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		res := env.do(http.MethodGet, env.http.URL+path, "", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		assert.Contains(t, res.Header.Get("Content-Type"), "application/json")
		var meta map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&meta))
		assert.Equal(t, testResource, meta["resource"])
		assert.Equal(t, []any{env.iss.URL()}, meta["authorization_servers"])
		assert.Equal(t, []any{"header"}, meta["bearer_methods_supported"])
		assert.NotEmpty(t, meta["resource_name"])
		scopes := meta["scopes_supported"].([]any)
		assert.Contains(t, scopes, "mcp:read")
		assert.Contains(t, scopes, "mcp:write")
		assert.NotContains(t, scopes, "offline_access")
	}
}

func TestResourceMetadataURLs(t *testing.T) {
	u, err := resourceMetadataURL("https://mcp.example.com/tenant/mcp")
	require.NoError(t, err)
	assert.Equal(t, "https://mcp.example.com/.well-known/oauth-protected-resource/tenant/mcp", u)
	assert.Contains(t, resourceMetadataPaths("https://mcp.example.com/tenant/mcp"), "/.well-known/oauth-protected-resource/tenant/mcp")
	ts := newToolScopes("mcp:read", map[string]ToolConfig{"echo": {Scopes: []string{"offline_access"}}})
	assert.NotContains(t, ts.supported(), "offline_access")
}
