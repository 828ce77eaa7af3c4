package authserver

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/metrics"
)

// metricsEnv is a server with Prometheus metrics, as the binary runs it.
func metricsEnv(t *testing.T, mutate func(*Config)) *env {
	return newEnv(t, func(c *Config) {
		c.Metrics = metrics.New(metrics.NamespaceAuthServer, metrics.AuthServerSeries)
		if mutate != nil {
			mutate(c)
		}
	})
}

// authFailures scrapes /metrics and returns oauth2_auth_failures_total by
// reason.
func authFailures(t *testing.T, e *env) map[string]int {
	t.Helper()
	resp := e.get("/metrics", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	const prefix = `oauth2_auth_failures_total{reason="`
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		reason, value, ok := strings.Cut(line, `"} `)
		require.True(t, ok, line)
		n, err := strconv.Atoi(value)
		require.NoError(t, err, line)
		out[reason] = n
	}
	require.NoError(t, sc.Err())
	return out
}

func TestAuthFailuresCountedByReason(t *testing.T) {
	e := metricsEnv(t, func(c *Config) { c.Registration.InitialAccessToken = "initial-access-for-test" })
	assert.Empty(t, authFailures(t, e))

	// invalid_client: a wrong secret.
	resp := e.postForm("/token", url.Values{"grant_type": {"client_credentials"}}, basic(testServiceClient, "wrong"))
	requireOAuthError(t, resp, http.StatusUnauthorized, ErrInvalidClient)
	// invalid_grant: a code this server never issued.
	a := e.authorize(authzParams{scope: "openid offline_access mcp:read"})
	resp = e.exchange(authorized{code: "never-issued", verifier: a.verifier, redirect: a.redirect, clientID: a.clientID}, nil)
	requireOAuthError(t, resp, http.StatusBadRequest, ErrInvalidGrant)
	// code_replay: the real code, redeemed twice.
	resp = e.exchange(a, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	tokens := decode(t, resp)
	requireOAuthError(t, e.exchange(a, nil), http.StatusBadRequest, ErrInvalidGrant)
	// refresh_reuse: a fresh grant's refresh token, used twice.
	first := str(e.login(authzParams{scope: "openid offline_access mcp:read"})["refresh_token"])
	require.NotEmpty(t, first)
	require.Equal(t, http.StatusOK, e.refresh(first, testPublicClient, nil).StatusCode)
	requireOAuthError(t, e.refresh(first, testPublicClient, nil), http.StatusBadRequest, ErrInvalidGrant)
	// invalid_token: /userinfo with no token and with the revoked grant's
	// token, /register without the initial access token.
	requireOAuthError(t, e.get("/userinfo", nil), http.StatusUnauthorized, ErrInvalidToken)
	require.NotEmpty(t, str(tokens["access_token"]))
	requireOAuthError(t, e.get("/userinfo", http.Header{"Authorization": {"Bearer " + str(tokens["access_token"])}}),
		http.StatusUnauthorized, ErrInvalidToken)
	resp = e.post("/register", "application/json", `{"redirect_uris":["`+testRedirect+`"]}`, nil)
	requireOAuthError(t, resp, http.StatusUnauthorized, ErrInvalidToken)
	// Not authentication failures: a malformed request is not counted.
	requireOAuthError(t, e.postForm("/token", url.Values{}, nil), http.StatusBadRequest, ErrInvalidRequest)

	assert.Equal(t, map[string]int{
		"invalid_client": 1, "invalid_grant": 1, "code_replay": 1, "refresh_reuse": 1, "invalid_token": 3,
	}, authFailures(t, e))
}

func TestAuthFailuresCountCSRF(t *testing.T) {
	e := metricsEnv(t, func(c *Config) { c.Mock.AutoApprove = false })
	id, _, cookie, _ := consentPageFor(t, e, authzParams{})
	form := url.Values{"request_id": {id}, "csrf_token": {"forged"}, "action": {"approve"}, "user": {"alice"}}
	resp := e.postForm("/authorize/decision", form, cookieHeader(cookie))
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, map[string]int{"csrf": 1}, authFailures(t, e))
}

// pprofGet fetches a pprof page with the given Host header.
func pprofGet(t *testing.T, e *env, host string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.ts.URL+metrics.PprofPrefix+"/cmdline", nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

func TestPprofOnlyWhenSwitchedOnAndOnlyForLoopback(t *testing.T) {
	off := newEnv(t, nil)
	assert.Equal(t, http.StatusNotFound, pprofGet(t, off, ""), "server.pprof defaults to off")

	on := newEnv(t, func(c *Config) { c.Server.Pprof = true })
	assert.Equal(t, http.StatusOK, pprofGet(t, on, ""))
	assert.Equal(t, http.StatusOK, pprofGet(t, on, "localhost"))
	// A DNS-rebinding page reaches loopback with its own name as Host.
	assert.Equal(t, http.StatusForbidden, pprofGet(t, on, "attacker.example"))
}

func TestRecorderKeepsNoSamplesWithoutControlAPI(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Mock.ControlAPI = false })
	for range 3 {
		resp := e.postForm("/token", url.Values{"grant_type": {"client_credentials"}}, basic(testServiceClient, testServiceSecret))
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	stats := e.srv.Stats()
	assert.Equal(t, 3, stats.Requests["token"], "counters are kept for Go callers")
	assert.Equal(t, 3, stats.Grants["client_credentials"])
	assert.Empty(t, stats.LastRequests, "no samples: nobody can read them")
}

func TestRecorderRingKeepsTheNewestInOrder(t *testing.T) {
	e := newEnv(t, nil)
	for i := range lastRequestsKept + 3 {
		e.postForm("/token", url.Values{"grant_type": {"client_credentials"}, "scope": {strconv.Itoa(i)}}, basic(testServiceClient, "wrong"))
	}
	last := e.srv.Stats().LastRequests["token"]
	require.Len(t, last, lastRequestsKept)
	for i, rec := range last {
		assert.Equal(t, strconv.Itoa(i+3), rec.Form["scope"])
		assert.Equal(t, http.StatusUnauthorized, rec.Status)
		assert.Equal(t, "Basic ****", rec.Auth)
		assert.Equal(t, "client_credentials", rec.Form["grant_type"])
	}
}
