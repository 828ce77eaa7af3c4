package authserver

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSQLiteStateSurvivesRestart: registered clients, refresh families and
// revocations outlive the process when storage.driver is sqlite.
func TestSQLiteStateSurvivesRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "data", "as.db")
	sqlite := func(c *Config) { c.Storage.Driver = "sqlite"; c.Storage.SQLitePath = db }
	e := newEnv(t, sqlite)
	resp := e.register(`{"redirect_uris":["http://127.0.0.1:3001/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`, nil)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	clientID := str(decode(t, resp)["client_id"])
	kept := e.login(authzParams{clientID: clientID, scope: "mcp:read"})
	revoked := e.login(authzParams{scope: "mcp:read"})
	require.Equal(t, http.StatusOK, e.revoke(str(revoked["refresh_token"]), testPublicClient).StatusCode)
	e.ts.Close()
	require.NoError(t, e.srv.Close())

	// A new server on the same database and key, with the same clock.
	cfg := testConfig(e.clock)
	sqlite(&cfg)
	srv, err := New(cfg)
	require.NoError(t, err)
	e2 := &env{t: t, srv: srv, ts: httptest.NewServer(srv), clock: e.clock, client: e.client}
	t.Cleanup(func() { e2.ts.Close(); _ = srv.Close() })

	resp = e2.refresh(str(kept["refresh_token"]), clientID, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the registered client and its refresh token survive")
	requireOAuthError(t, e2.refresh(str(revoked["refresh_token"]), testPublicClient, nil), http.StatusBadRequest, ErrInvalidGrant)
	assert.Equal(t, false, e2.introspect(str(revoked["access_token"]))["active"], "revocations survive")
	assert.Equal(t, true, e2.introspect(str(kept["access_token"]))["active"])
}
