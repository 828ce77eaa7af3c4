package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newTestRouter builds a chi router shaped like the servers': the metrics
// middleware outermost, a few routes (one with a URL parameter, one
// streaming), and /metrics.
func newTestRouter(m *Metrics) http.Handler {
	r := chi.NewRouter()
	r.Use(m.Middleware)
	r.Post("/token", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("grant_type") == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	r.Delete("/control/clients/{client_id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	r.Get("/empty", func(w http.ResponseWriter, r *http.Request) {})
	r.Get("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		// The SSE transport needs Flush through the wrapped writer.
		if err := http.NewResponseController(w).Flush(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	r.Method(http.MethodGet, "/metrics", m.Handler())
	return r
}

// scrape fetches /metrics from h and returns the exposition text.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

func serve(h http.Handler, method, target string, body io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestMiddlewareRecordsRoutePatternAndStatus(t *testing.T) {
	m := New(NamespaceAuthServer, AuthServerSeries)
	h := newTestRouter(m)

	serve(h, http.MethodPost, "/token", strings.NewReader("grant_type=client_credentials"))
	serve(h, http.MethodPost, "/token", strings.NewReader("grant_type=client_credentials"))
	serve(h, http.MethodPost, "/token", strings.NewReader(""))
	serve(h, http.MethodDelete, "/control/clients/alpha", nil)
	serve(h, http.MethodDelete, "/control/clients/beta", nil)
	serve(h, http.MethodGet, "/empty", nil)
	serve(h, http.MethodGet, "/no/such/path/1", nil)
	serve(h, http.MethodGet, "/no/such/path/2", nil)
	serve(h, "BREW", "/token", nil)

	text := scrape(t, h)
	for _, line := range []string{
		`oauth2_http_requests_total{code="200",method="POST",route="/token"} 2`,
		`oauth2_http_requests_total{code="400",method="POST",route="/token"} 1`,
		`oauth2_http_requests_total{code="204",method="DELETE",route="/control/clients/{client_id}"} 2`,
		`oauth2_http_requests_total{code="200",method="GET",route="/empty"} 1`,
		`oauth2_http_requests_total{code="404",method="GET",route="unmatched"} 2`,
		`oauth2_http_request_duration_seconds_count{method="POST",route="/token"} 3`,
		`oauth2_http_request_duration_seconds_bucket{method="POST",route="/token",le="+Inf"} 3`,
	} {
		assert.Contains(t, text, line+"\n")
	}
	// Raw paths and arbitrary methods never become label values.
	assert.NotContains(t, text, "alpha")
	assert.NotContains(t, text, "/no/such/path")
	assert.NotContains(t, text, "BREW")
	assert.Contains(t, text, `method="OTHER"`)
}

func TestMiddlewareKeepsFlushWorking(t *testing.T) {
	m := New(NamespaceMCPServer, MCPServerSeries)
	h := newTestRouter(m)
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL + "/stream")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "data: one\n\n", string(body))
	assert.Contains(t, scrape(t, h), `mcp_http_requests_total{code="200",method="GET",route="/stream"} 1`)
}

func TestEventCounters(t *testing.T) {
	m := New(NamespaceMCPServer, TokenSeries|JWKSSeries|AuditSeries)
	m.TokensIssued.WithLabelValues("client_credentials").Inc()
	m.TokensIssued.WithLabelValues("refresh_token").Add(2)
	m.AuthFailures.WithLabelValues("expired").Inc()
	m.JWKSRefreshes.WithLabelValues(OutcomeOK).Inc()
	m.AuditWrites.Add(3)
	m.AuditFailures.Inc()

	text := scrape(t, newTestRouter(m))
	for _, line := range []string{
		`mcp_tokens_issued_total{grant_type="client_credentials"} 1`,
		`mcp_tokens_issued_total{grant_type="refresh_token"} 2`,
		`mcp_auth_failures_total{reason="expired"} 1`,
		`mcp_jwks_refreshes_total{outcome="ok"} 1`,
		`mcp_audit_writes_total 3`,
		`mcp_audit_failures_total 1`,
	} {
		assert.Contains(t, text, line+"\n")
	}
	assert.Contains(t, text, "process_resident_memory_bytes ")
	assert.Contains(t, text, "go_goroutines ")
}

// TestEachServerExportsItsSeries: the authorization server has no JWKS or
// audit series, the MCP server no tokens-issued series, and updating an
// unexported counter is harmless.
func TestEachServerExportsItsSeries(t *testing.T) {
	as := New(NamespaceAuthServer, AuthServerSeries)
	as.TokensIssued.WithLabelValues("client_credentials").Inc()
	as.AuditWrites.Inc()
	as.JWKSRefreshes.WithLabelValues(OutcomeOK).Inc()
	as.AuthFailures.WithLabelValues("invalid_client").Inc()
	text := scrape(t, as.Handler())
	assert.Contains(t, text, `oauth2_tokens_issued_total{grant_type="client_credentials"} 1`+"\n")
	assert.Contains(t, text, `oauth2_auth_failures_total{reason="invalid_client"} 1`+"\n")
	assert.NotContains(t, text, "oauth2_audit_")
	assert.NotContains(t, text, "oauth2_jwks_")

	mcp := New(NamespaceMCPServer, MCPServerSeries)
	mcp.TokensIssued.WithLabelValues("client_credentials").Inc()
	mcp.JWKSRefreshes.WithLabelValues(OutcomeOK).Inc()
	text = scrape(t, mcp.Handler())
	assert.NotContains(t, text, "mcp_tokens_issued")
	assert.Contains(t, text, "mcp_audit_writes_total 0\n")
	assert.Contains(t, text, `mcp_jwks_refreshes_total{outcome="ok"} 1`+"\n")
}

func TestRegistriesAreIndependent(t *testing.T) {
	// Two servers in one process (as in tests) must not share series.
	a, b := New(NamespaceMCPServer, MCPServerSeries), New(NamespaceMCPServer, MCPServerSeries)
	a.AuditWrites.Inc()
	assert.Contains(t, scrape(t, a.Handler()), "mcp_audit_writes_total 1\n")
	assert.Contains(t, scrape(t, b.Handler()), "mcp_audit_writes_total 0\n")
}

func TestCountJWKSFetches(t *testing.T) {
	status := http.StatusOK
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"keys":[]}`)
	}))
	defer jwks.Close()

	m := New(NamespaceMCPServer, MCPServerSeries)
	client := &http.Client{Transport: m.CountJWKSFetches(jwks.Client().Transport)}
	get := func() {
		resp, err := client.Get(jwks.URL)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	get()
	get()
	status = http.StatusServiceUnavailable
	get()
	failing := &http.Client{Transport: m.CountJWKSFetches(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("connection refused")
	}))}
	_, err := failing.Get(jwks.URL)
	require.Error(t, err)

	text := scrape(t, m.Handler())
	assert.Contains(t, text, `mcp_jwks_refreshes_total{outcome="ok"} 2`+"\n")
	assert.Contains(t, text, `mcp_jwks_refreshes_total{outcome="error"} 2`+"\n")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
