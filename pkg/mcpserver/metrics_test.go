package mcpserver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/metrics"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetrics(t *testing.T) {
	env := newTestEnv(t, nil)
	m := env.srv.metrics
	assert.GreaterOrEqual(t, counterValue(t, m.JWKSRefreshes.WithLabelValues("ok")), 1.0, "the initial JWKS fetch is counted")

	env.post(initializeBody, nil)
	env.post(initializeBody, bearer("garbage"))
	env.post(initializeBody, bearer(env.token("alice", "profile")))
	require.Equal(t, http.StatusOK, env.post(initializeBody, bearer(env.token("alice", "mcp:read"))).StatusCode)
	assert.Equal(t, 1.0, counterValue(t, m.AuthFailures.WithLabelValues("missing_token")))
	assert.Equal(t, 1.0, counterValue(t, m.AuthFailures.WithLabelValues("malformed")))
	assert.Equal(t, 1.0, counterValue(t, m.AuthFailures.WithLabelValues("insufficient_scope")))
	assert.Equal(t, 4.0, counterValue(t, m.AuditWrites))

	res := env.do(http.MethodGet, env.http.URL+"/metrics", "", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	body := readBody(t, res)
	assert.Contains(t, body, "mcp_jwks_refreshes_total")
	assert.Contains(t, body, `mcp_http_requests_total{code="401",method="POST",route="/mcp"}`)
	assert.NotEmpty(t, res.Header.Get("X-Request-Id"))

	// Not for remote callers.
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	rec := httptest.NewRecorder()
	env.srv.Handler().ServeHTTP(rec, req)
	assert.Equal(t, http.StatusForbidden, rec.Code)
}

func TestRequestIDPropagatesToAudit(t *testing.T) {
	env := newTestEnv(t, nil)
	res := env.post(initializeBody, map[string]string{"X-Request-Id": "trace-123"})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "trace-123", res.Header.Get("X-Request-Id"))
	records := readAuditFile(t, env.cfg.Audit.File)
	require.NotEmpty(t, records)
	assert.Equal(t, "trace-123", records[len(records)-1].RequestID)
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// TestPprofBehindSwitch: pprof is served only when server.pprof is on
// (issue 7: "behind a config switch, loopback only"), and then, like
// /metrics, not to a DNS-rebinding page whose Host names another site.
func TestPprofBehindSwitch(t *testing.T) {
	off := newTestEnv(t, nil)
	res := off.do(http.MethodGet, off.http.URL+"/debug/pprof/cmdline", "", nil)
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "pprof is off by default")

	on := newTestEnv(t, func(c *Config) { c.Server.Pprof = true })
	res = on.do(http.MethodGet, on.http.URL+"/debug/pprof/cmdline", "", nil)
	assert.Equal(t, http.StatusOK, res.StatusCode)

	for _, env := range []*testEnv{off, on} {
		for _, path := range []string{"/debug/pprof/cmdline", "/metrics"} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Host = "evil.example:3003"
			rec := httptest.NewRecorder()
			env.srv.Handler().ServeHTTP(rec, req)
			assert.Contains(t, []int{http.StatusForbidden, http.StatusNotFound}, rec.Code, path)
			assert.NotEqual(t, http.StatusOK, rec.Code, path)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Host = "localhost:3003"
	req.Header.Set("Origin", "http://evil.example")
	rec := httptest.NewRecorder()
	on.srv.Handler().ServeHTTP(rec, req)
	assert.Equal(t, http.StatusForbidden, rec.Code, "a cross-site Origin is refused")
}

// TestMetricsSeriesByMode: the JWKS series only where JWKS are fetched.
func TestMetricsSeriesByMode(t *testing.T) {
	assert.Equal(t, metrics.MCPServerSeries, metricsSeries(AuthConfig{Enabled: true, Mode: ModeJWT}))
	assert.Equal(t, metrics.AuditSeries, metricsSeries(AuthConfig{Enabled: true, Mode: ModeIntrospection}))
	assert.Equal(t, metrics.AuditSeries, metricsSeries(AuthConfig{Enabled: false, Mode: ModeJWT}))
}
