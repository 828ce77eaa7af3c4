package authserver

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUserinfoReturnsUserClaims(t *testing.T) {
	e := newEnv(t, nil)
	// Any audience: the token was minted for the MCP server.
	tok := e.login(authzParams{scope: "openid email profile", resource: testResource, loginHint: "bob"})
	resp := e.get("/userinfo", http.Header{"Authorization": {"Bearer " + str(tok["access_token"])}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	assert.Equal(t, "no-cache", resp.Header.Get("Pragma"))
	info := decode(t, resp)
	assert.Equal(t, map[string]any{"sub": "bob", "email": "bob@example.com", "name": "Bob Example"}, info)
}

func TestUserinfoRefusesBadTokens(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.get("/userinfo", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, `Bearer realm="http://issuer.test"`, resp.Header.Get("WWW-Authenticate"))
	resp = e.get("/userinfo", http.Header{"Authorization": {"Bearer not-a-token"}})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
	tok := e.login(authzParams{})
	// Tokens in the query string are not accepted (RFC 6750 §2.3 is not supported).
	assert.Equal(t, http.StatusUnauthorized, e.get("/userinfo?"+url.Values{"access_token": {str(tok["access_token"])}}.Encode(), nil).StatusCode)
	e.clock.Advance(2 * time.Hour)
	assert.Equal(t, http.StatusUnauthorized, e.get("/userinfo", http.Header{"Authorization": {"Bearer " + str(tok["access_token"])}}).StatusCode)
}
