package authserver

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
)

func (e *env) revoke(token, clientID string) *http.Response {
	return e.postForm("/revoke", url.Values{"token": {token}, "client_id": {clientID}}, nil)
}

func TestRevokeRefreshTokenRevokesFamily(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(authzParams{scope: "mcp:read offline_access"})
	rotated := decode(t, e.refresh(str(tok["refresh_token"]), testPublicClient, nil))
	resp := e.revoke(str(rotated["refresh_token"]), testPublicClient)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	requireOAuthError(t, e.refresh(str(rotated["refresh_token"]), testPublicClient, nil), http.StatusBadRequest, ErrInvalidGrant)
	assert.Equal(t, false, e.introspect(str(rotated["refresh_token"]))["active"])
	assert.Equal(t, false, e.introspect(str(rotated["access_token"]))["active"])
	assert.Equal(t, false, e.introspect(str(tok["access_token"]))["active"])
}

func TestRevokeAccessToken(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(authzParams{})
	require.Equal(t, http.StatusOK, e.revoke(str(tok["access_token"]), testPublicClient).StatusCode)
	assert.Equal(t, false, e.introspect(str(tok["access_token"]))["active"])
	assert.Equal(t, true, e.introspect(str(tok["refresh_token"]))["active"], "only the access token")
	resp := e.get("/userinfo", http.Header{"Authorization": {"Bearer " + str(tok["access_token"])}})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestRevokeClientCredentialsTokenLeavesOthersAlone(t *testing.T) {
	e := newEnv(t, nil)
	get := func() string {
		resp := e.postForm("/token", url.Values{"grant_type": {"client_credentials"}}, basic(testServiceClient, testServiceSecret))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return str(decode(t, resp)["access_token"])
	}
	a, b := get(), get()
	_, err := e.srv.store.GetAccess(t.Context(), str(e.verify(a)["jti"]))
	assert.ErrorIs(t, err, store.ErrNotFound, "client_credentials tokens are not recorded at issue")
	resp := e.postForm("/revoke", url.Values{"token": {a}}, basic(testServiceClient, testServiceSecret))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, false, e.introspect(a)["active"])
	assert.Equal(t, true, e.introspect(b)["active"])
}

func TestRevokeUnknownAndOtherClientsTokens(t *testing.T) {
	e := newEnv(t, nil)
	assert.Equal(t, http.StatusOK, e.revoke("unknown", testPublicClient).StatusCode)
	tok := e.login(authzParams{})
	assert.Equal(t, http.StatusOK, e.revoke(str(tok["refresh_token"]), testOtherPublic).StatusCode)
	assert.Equal(t, http.StatusOK, e.revoke(str(tok["access_token"]), testOtherPublic).StatusCode)
	assert.Equal(t, true, e.introspect(str(tok["refresh_token"]))["active"])
	assert.Equal(t, true, e.introspect(str(tok["access_token"]))["active"])
}

func TestRevokeBadInput(t *testing.T) {
	e := newEnv(t, nil)
	requireOAuthError(t, e.postForm("/revoke", url.Values{"token": {"x"}}, nil), http.StatusUnauthorized, ErrInvalidClient)
	requireOAuthError(t, e.postForm("/revoke", url.Values{"client_id": {testPublicClient}}, nil), http.StatusBadRequest, ErrInvalidRequest)
	requireOAuthError(t, e.post("/revoke", "application/x-www-form-urlencoded", "token=a&token=b&client_id="+testPublicClient, nil), http.StatusBadRequest, ErrInvalidRequest)
	requireOAuthError(t, e.postForm("/revoke", url.Values{"token": {"x"}}, basic(testServiceClient, "bad")), http.StatusUnauthorized, ErrInvalidClient)
}
