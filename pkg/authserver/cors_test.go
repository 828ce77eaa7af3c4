package authserver

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const inspectorOrigin = "http://localhost:6274"

func (e *env) options(path string, header http.Header) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodOptions, e.ts.URL+path, nil)
	require.NoError(e.t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func preflightHeader(origin string) http.Header {
	return http.Header{
		"Origin":                         {origin},
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"authorization, content-type, mcp-protocol-version"},
	}
}

func TestCORSPreflight(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Server.CORSOrigins = []string{inspectorOrigin, "https://app.example"} })
	for path, methods := range map[string]string{
		"/token": "POST", "/register": "POST", "/revoke": "POST", "/userinfo": "GET, POST",
	} {
		t.Run(path, func(t *testing.T) {
			resp := e.options(path, preflightHeader(inspectorOrigin))
			require.Equal(t, http.StatusNoContent, resp.StatusCode)
			h := resp.Header
			assert.Equal(t, inspectorOrigin, h.Get("Access-Control-Allow-Origin"))
			assert.Equal(t, methods, h.Get("Access-Control-Allow-Methods"))
			assert.Equal(t, "Authorization, Content-Type, MCP-Protocol-Version", h.Get("Access-Control-Allow-Headers"))
			assert.Equal(t, "600", h.Get("Access-Control-Max-Age"))
			assert.Contains(t, h.Values("Vary"), "Origin")
			assert.Empty(t, h.Get("Access-Control-Allow-Credentials"), "credentials are never allowed")

			// Another origin gets no CORS headers: the browser refuses.
			resp = e.options(path, preflightHeader("http://evil.example"))
			require.Equal(t, http.StatusNoContent, resp.StatusCode)
			assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
			assert.Empty(t, resp.Header.Get("Access-Control-Allow-Methods"))
		})
	}
	// Introspection is server-to-server: no preflight, no CORS.
	resp := e.options("/introspect", preflightHeader(inspectorOrigin))
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}

func TestCORSOnResponses(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Server.CORSOrigins = []string{inspectorOrigin} })
	cc := url.Values{"grant_type": {"client_credentials"}}
	withOrigin := func(origin string, h http.Header) http.Header {
		h.Set("Origin", origin)
		return h
	}
	ok := e.postForm("/token", cc, withOrigin(inspectorOrigin, basic(testServiceClient, testServiceSecret)))
	require.Equal(t, http.StatusOK, ok.StatusCode)
	assert.Equal(t, inspectorOrigin, ok.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, ok.Header.Values("Vary"), "Origin")
	assert.Empty(t, ok.Header.Get("Access-Control-Allow-Credentials"))

	// Errors are readable too, challenge included.
	bad := e.postForm("/token", cc, withOrigin(inspectorOrigin, basic(testServiceClient, "wrong")))
	require.Equal(t, http.StatusUnauthorized, bad.StatusCode)
	assert.Equal(t, inspectorOrigin, bad.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "WWW-Authenticate", bad.Header.Get("Access-Control-Expose-Headers"))

	reg := e.register(`{"redirect_uris":["http://127.0.0.1:6274/oauth/callback"]}`, http.Header{"Origin": {inspectorOrigin}})
	require.Equal(t, http.StatusCreated, reg.StatusCode)
	assert.Equal(t, inspectorOrigin, reg.Header.Get("Access-Control-Allow-Origin"))

	info := e.get("/userinfo", http.Header{"Origin": {inspectorOrigin}})
	require.Equal(t, http.StatusUnauthorized, info.StatusCode)
	assert.Equal(t, inspectorOrigin, info.Header.Get("Access-Control-Allow-Origin"))

	rev := e.postForm("/revoke", url.Values{"token": {"x"}}, withOrigin(inspectorOrigin, basic(testServiceClient, testServiceSecret)))
	require.Equal(t, http.StatusOK, rev.StatusCode)
	assert.Equal(t, inspectorOrigin, rev.Header.Get("Access-Control-Allow-Origin"))

	other := e.postForm("/token", cc, withOrigin("http://evil.example", basic(testServiceClient, testServiceSecret)))
	require.Equal(t, http.StatusOK, other.StatusCode)
	assert.Empty(t, other.Header.Get("Access-Control-Allow-Origin"))

	intro := e.postForm("/introspect", url.Values{"token": {"x"}}, withOrigin(inspectorOrigin, basic(testServiceClient, testServiceSecret)))
	require.Equal(t, http.StatusOK, intro.StatusCode)
	assert.Empty(t, intro.Header.Get("Access-Control-Allow-Origin"), "introspection is server-to-server")

	// Public documents keep "*".
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/jwks"} {
		assert.Equal(t, "*", e.get(path, http.Header{"Origin": {"http://evil.example"}}).Header.Get("Access-Control-Allow-Origin"), path)
	}
}

func TestCORSDefaultsAndWildcard(t *testing.T) {
	cc := url.Values{"grant_type": {"client_credentials"}}
	h := basic(testServiceClient, testServiceSecret)
	h.Set("Origin", inspectorOrigin)

	none := newEnv(t, nil)
	resp := none.postForm("/token", cc, h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "no origin is allowed by default")
	assert.Empty(t, none.options("/token", preflightHeader(inspectorOrigin)).Header.Get("Access-Control-Allow-Origin"))

	wild := newEnv(t, func(c *Config) { c.Server.CORSOrigins = []string{"*"} })
	resp = wild.postForm("/token", cc, h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Credentials"))
	pre := wild.options("/token", preflightHeader("https://anything.example"))
	assert.Equal(t, "*", pre.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "POST", pre.Header.Get("Access-Control-Allow-Methods"))
}

func TestCORSOriginsAreValidated(t *testing.T) {
	for _, bad := range []string{"localhost:6274", "http://localhost:6274/path", "null", "ftp://x", "http://u@h", ""} {
		cfg := DefaultConfig()
		cfg.Server.CORSOrigins = []string{"*", bad}
		err := cfg.Validate()
		if assert.Error(t, err, bad) {
			assert.Contains(t, err.Error(), "server.cors_origins[1]")
		}
	}
	cfg := DefaultConfig()
	cfg.Server.CORSOrigins = []string{"http://localhost:6274", "https://App.Example:8443", "*"}
	assert.NoError(t, cfg.Validate())
}
