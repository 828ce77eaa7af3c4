package authserver

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIntrospectActiveTokens(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(authzParams{scope: "mcp:read offline_access", resource: testResource})
	for _, auth := range []http.Header{basic(testServiceClient, testServiceSecret), basic(testConfClient, testConfSecret)} {
		resp := e.postForm("/introspect", url.Values{"token": {str(tok["access_token"])}}, auth)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		info := decode(t, resp)
		assert.Equal(t, true, info["active"])
		assert.Equal(t, "alice", info["sub"])
		assert.Equal(t, testPublicClient, info["client_id"])
		assert.Equal(t, "mcp:read offline_access", info["scope"])
		assert.Equal(t, testResource, info["aud"])
		assert.Equal(t, "http://issuer.test", info["iss"])
		assert.Equal(t, "alice@example.com", info["username"])
	}
	info := e.introspect(str(tok["refresh_token"]))
	assert.Equal(t, true, info["active"])
	assert.Equal(t, "refresh_token", info["token_type"])
	// client_secret_post works too.
	f := url.Values{"token": {str(tok["access_token"])}, "client_id": {testServiceClient}, "client_secret": {testServiceSecret}}
	assert.Equal(t, true, decode(t, e.postForm("/introspect", f, nil))["active"])
}

func TestIntrospectInactive(t *testing.T) {
	e := newEnv(t, nil)
	assert.Equal(t, map[string]any{"active": false}, e.introspect("garbage"))
	tok := e.login(authzParams{})
	e.clock.Advance(time.Hour + time.Second)
	assert.Equal(t, map[string]any{"active": false}, e.introspect(str(tok["access_token"])))
	// An ID token is not an access token.
	tok = e.login(authzParams{scope: "openid"})
	assert.Equal(t, false, e.introspect(str(tok["id_token"]))["active"])
	// A token signed by another server is not active.
	other := newEnv(t, func(c *Config) { c.Keys.PrivateKeyFile = ""; c.Keys.Algorithm = "ES256" })
	foreign := other.login(authzParams{})
	assert.Equal(t, false, e.introspect(str(foreign["access_token"]))["active"])
}

func TestIntrospectNeedsConfidentialClient(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(authzParams{})
	f := url.Values{"token": {str(tok["access_token"])}}
	requireOAuthError(t, e.postForm("/introspect", f, nil), http.StatusUnauthorized, ErrInvalidClient)
	requireOAuthError(t, e.postForm("/introspect", f, basic(testServiceClient, "wrong")), http.StatusUnauthorized, ErrInvalidClient)
	f.Set("client_id", testPublicClient)
	requireOAuthError(t, e.postForm("/introspect", f, nil), http.StatusUnauthorized, ErrInvalidClient)
}

func TestIntrospectBadInput(t *testing.T) {
	e := newEnv(t, nil)
	auth := basic(testServiceClient, testServiceSecret)
	requireOAuthError(t, e.postForm("/introspect", url.Values{}, auth), http.StatusBadRequest, ErrInvalidRequest)
	requireOAuthError(t, e.post("/introspect", "application/x-www-form-urlencoded", "token=a&token=b", auth), http.StatusBadRequest, ErrInvalidRequest)
	requireOAuthError(t, e.post("/introspect", "application/json", `{"token":"a"}`, auth), http.StatusBadRequest, ErrInvalidRequest)
}
