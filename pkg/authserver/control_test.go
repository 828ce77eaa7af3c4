package authserver

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (e *env) control(method, path, body string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+"/control"+path, strings.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func TestControlFaultStatus(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.control("POST", "/faults", `{"endpoint":"token","count":1,"status":503,"error":"temporarily_unavailable","mode":"status"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	a := e.authorize(authzParams{})
	requireOAuthError(t, e.exchange(a, nil), http.StatusServiceUnavailable, ErrTemporarilyUnavailable)
	assert.Equal(t, http.StatusOK, e.exchange(a, nil).StatusCode, "one fault only, answered before processing")
}

func TestControlFaultUntilCleared(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.srv.QueueFault(Fault{Endpoint: "jwks", Count: -1, Status: 500}))
	for range 3 {
		requireOAuthError(t, e.get("/jwks", nil), http.StatusInternalServerError, ErrServerError)
	}
	assert.Equal(t, http.StatusOK, e.control("DELETE", "/faults", "").StatusCode)
	assert.Equal(t, http.StatusOK, e.get("/jwks", nil).StatusCode)
}

func TestControlFaultMalformedAndDelay(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.srv.QueueFault(Fault{Endpoint: "metadata", Mode: FaultMalformed}))
	resp := e.get("/.well-known/oauth-authorization-server", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, _ := io.ReadAll(resp.Body)
	assert.False(t, json200(body))
	require.NoError(t, e.srv.QueueFault(Fault{Endpoint: "metadata", Mode: FaultDelay, DelayMS: 1}))
	assert.Equal(t, http.StatusOK, e.get("/.well-known/oauth-authorization-server", nil).StatusCode)
}

func json200(b []byte) bool { return strings.HasPrefix(string(b), "{\"issuer\"") }

func TestControlFaultDrop(t *testing.T) {
	e := newEnv(t, nil)
	require.NoError(t, e.srv.QueueFault(Fault{Endpoint: "token", Mode: FaultDrop}))
	_, err := e.client.PostForm(e.ts.URL+"/token", url.Values{"grant_type": {"client_credentials"}})
	require.Error(t, err)
	assert.False(t, errors.Is(err, http.ErrUseLastResponse))
	assert.Equal(t, http.StatusOK, e.get("/healthz", nil).StatusCode, "the server keeps serving")
}

func TestControlFaultValidation(t *testing.T) {
	e := newEnv(t, nil)
	for _, body := range []string{
		`{"endpoint":"nope","status":500}`,
		`{"endpoint":"token","status":200}`,
		`{"endpoint":"token","mode":"explode"}`,
		`{"endpoint":"token","mode":"delay","delay_ms":600000}`,
		`{"endpoint":"token","count":-5,"status":500}`,
		`{"endpoint":"token","status":500,"unknown":1}`,
		`not json`,
	} {
		requireOAuthError(t, e.control("POST", "/faults", body), http.StatusBadRequest, ErrInvalidRequest)
	}
}

func TestControlDenyNextLogin(t *testing.T) {
	e := newEnv(t, nil)
	require.Equal(t, http.StatusOK, e.control("POST", "/deny-next-login", "").StatusCode)
	_, challenge := pkcePair()
	params := redirectQuery(t, e.get("/authorize?"+authorizeQuery(authzParams{}, challenge, "s").Encode(), nil), testRedirect)
	assert.Equal(t, ErrAccessDenied, params.Get("error"))
}

func TestControlRotateKeyKeepsOldKeyUntilItsTokensExpire(t *testing.T) {
	e := newEnv(t, nil)
	before := str(e.login(authzParams{})["access_token"])
	resp := e.control("POST", "/rotate-key", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	newKid := str(decode(t, resp)["kid"])
	after := str(e.login(authzParams{})["access_token"])
	h := func(tok string) string {
		parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
		require.NoError(t, err)
		return str(parsed.Header["kid"])
	}
	assert.Equal(t, newKid, h(after))
	assert.NotEqual(t, h(before), newKid)
	e.verify(before)
	e.verify(after)
	assert.Len(t, decode(t, e.get("/jwks", nil))["keys"], 2)
	// Once every token of the old key has expired, it is no longer published.
	e.clock.Advance(time.Hour + rotationLeeway + time.Second)
	keys := decode(t, e.get("/jwks", nil))["keys"].([]any)
	require.Len(t, keys, 1)
	assert.Equal(t, newKid, keys[0].(map[string]any)["kid"])
}

func TestControlLifetimes(t *testing.T) {
	e := newEnv(t, nil)
	require.Equal(t, http.StatusOK, e.control("POST", "/lifetimes", `{"access_token_ttl":"2s"}`).StatusCode)
	tok := e.login(authzParams{})
	assert.Equal(t, float64(2), tok["expires_in"])
	claims := e.verify(str(tok["access_token"]))
	assert.Equal(t, claims["iat"].(float64)+2, claims["exp"])
	for _, bad := range []string{`{"access_token_ttl":"-1s"}`, `{"code_ttl":"soon"}`, `{"ttl":"1s"}`} {
		requireOAuthError(t, e.control("POST", "/lifetimes", bad), http.StatusBadRequest, ErrInvalidRequest)
	}
}

func TestControlUsersAndClients(t *testing.T) {
	e := newEnv(t, nil)
	require.Equal(t, http.StatusOK, e.control("POST", "/users", `{"subject":"carol","email":"carol@example.com","name":"Carol"}`).StatusCode)
	claims := e.verify(str(e.login(authzParams{loginHint: "carol"})["access_token"]))
	assert.Equal(t, "carol@example.com", claims["email"])
	requireOAuthError(t, e.control("POST", "/users", `{"subject":""}`), http.StatusBadRequest, ErrInvalidRequest)

	client := `{"client_id":"runtime","redirect_uris":["http://127.0.0.1:9/cb"],"grant_types":["authorization_code"],"scopes":["mcp:read"],"token_endpoint_auth_method":"none"}`
	require.Equal(t, http.StatusOK, e.control("POST", "/clients", client).StatusCode)
	e.authorize(authzParams{clientID: "runtime", redirect: "http://127.0.0.1:9/cb", scope: "mcp:read"})
	requireOAuthError(t, e.control("POST", "/clients", `{"client_id":"bad","grant_types":["implicit"],"token_endpoint_auth_method":"none"}`), http.StatusBadRequest, ErrInvalidRequest)

	require.Equal(t, http.StatusOK, e.control("DELETE", "/clients/runtime", "").StatusCode)
	_, challenge := pkcePair()
	resp := e.get("/authorize?"+authorizeQuery(authzParams{clientID: "runtime", redirect: "http://127.0.0.1:9/cb"}, challenge, "s").Encode(), nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestControlRevokeUser(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.login(authzParams{})
	bob := e.login(authzParams{loginHint: "bob"})
	require.Equal(t, http.StatusOK, e.control("POST", "/revoke-user/alice", "").StatusCode)
	assert.Equal(t, false, e.introspect(str(alice["access_token"]))["active"])
	requireOAuthError(t, e.refresh(str(alice["refresh_token"]), testPublicClient, nil), http.StatusBadRequest, ErrInvalidGrant)
	assert.Equal(t, true, e.introspect(str(bob["access_token"]))["active"])
	// New logins work again.
	e.login(authzParams{})
}

func TestControlStatsCountAndMask(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(authzParams{})
	require.Equal(t, http.StatusOK, e.refresh(str(tok["refresh_token"]), testPublicClient, nil).StatusCode)
	resp := e.control("GET", "/stats", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), str(tok["refresh_token"]))
	stats := e.srv.Stats()
	assert.Equal(t, 2, stats.Requests["token"])
	assert.Equal(t, 1, stats.Requests["authorize"])
	assert.Equal(t, 1, stats.Grants["refresh_token"])
	assert.Equal(t, 1, stats.Grants["authorization_code"])
	last := stats.LastRequests["token"]
	require.Len(t, last, 2)
	assert.Equal(t, "refresh_token", last[1].Form["grant_type"])
	assert.Equal(t, "****", last[1].Form["refresh_token"])
	assert.Equal(t, "****", last[0].Form["code"])
	assert.Equal(t, "****", last[0].Form["code_verifier"])
	assert.Equal(t, http.StatusOK, last[1].Status)
	// Basic credentials are masked too, and only the last few are kept.
	for range lastRequestsKept + 5 {
		e.postForm("/token", url.Values{"grant_type": {"client_credentials"}}, basic(testServiceClient, testServiceSecret))
	}
	last = e.srv.Stats().LastRequests["token"]
	assert.Len(t, last, lastRequestsKept)
	assert.Equal(t, "Basic ****", last[0].Auth)
}

func TestControlReset(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(authzParams{})
	require.NoError(t, e.srv.AddUser(User{Subject: "carol"}))
	require.NoError(t, e.srv.RemoveClient(testOtherPublic))
	require.NoError(t, e.srv.SetLifetimes(Lifetimes{AccessTokenTTL: time.Second}))
	require.NoError(t, e.srv.QueueFault(Fault{Endpoint: "jwks", Count: -1, Status: 500}))
	require.Equal(t, http.StatusOK, e.control("POST", "/reset", "").StatusCode)

	assert.Equal(t, http.StatusOK, e.get("/jwks", nil).StatusCode)
	assert.Empty(t, e.srv.Stats().Requests["token"], "counters reset")
	requireOAuthError(t, e.refresh(str(tok["refresh_token"]), testPublicClient, nil), http.StatusBadRequest, ErrInvalidGrant)
	_, ok := e.srv.user("carol")
	assert.False(t, ok)
	e.authorize(authzParams{clientID: testOtherPublic})
	assert.Equal(t, float64(3600), e.login(authzParams{})["expires_in"])
}

func TestControlOnlyForLoopbackAndWhenEnabled(t *testing.T) {
	e := newEnv(t, nil)
	req := httptest.NewRequest(http.MethodGet, "/control/stats", nil)
	req.RemoteAddr = "192.0.2.10:5555"
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusForbidden, rec.Code)

	// DNS rebinding: loopback address, foreign Host or Origin.
	for _, h := range []http.Header{
		{"Host": {"evil.example:8080"}},
		{"Origin": {"http://evil.example"}},
	} {
		req := httptest.NewRequest(http.MethodPost, "/control/reset", nil)
		req.RemoteAddr = "127.0.0.1:5555"
		req.Host = "127.0.0.1:3002"
		if host := h.Get("Host"); host != "" {
			req.Host = host
		}
		req.Header.Set("Origin", h.Get("Origin"))
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusForbidden, rec.Code, h)
	}
	for _, host := range []string{"localhost:3002", "[::1]:3002", "issuer.test"} {
		req := httptest.NewRequest(http.MethodGet, "/control/stats", nil)
		req.RemoteAddr = "127.0.0.1:5555"
		req.Host = host
		req.Header.Set("Origin", "http://"+host)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusOK, rec.Code, host)
	}

	off := newEnv(t, func(c *Config) { c.Mock.ControlAPI = false })
	assert.Equal(t, http.StatusNotFound, off.control("GET", "/stats", "").StatusCode)
}
