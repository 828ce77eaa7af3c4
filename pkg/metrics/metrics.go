// Package metrics holds what one server exports to Prometheus: HTTP request
// counts and latencies by route, and the counters of the events an operator
// of an OAuth2-protected MCP deployment watches (tokens issued, why
// authentication failed, JWKS fetches, audit writes).
//
// Each server builds its own *Metrics with New; nothing is registered with
// Prometheus' global default registry, so two servers (or two tests) in one
// process never share or collide on series.
//
// Series names are the namespace given to New followed by the metric name:
// every server has <ns>_http_requests_total,
// <ns>_http_request_duration_seconds and <ns>_auth_failures_total, plus the
// standard go_* and process_* series; the authorization server adds
// oauth2_tokens_issued_total, the MCP server mcp_jwks_refreshes_total,
// mcp_audit_writes_total and mcp_audit_failures_total (see Series).
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespaces the two servers use, so the series names are fixed by this
// package and the load tool and dashboards can rely on them.
const (
	// NamespaceAuthServer prefixes the authorization server's series.
	NamespaceAuthServer = "oauth2"
	// NamespaceMCPServer prefixes the MCP server's series.
	NamespaceMCPServer = "mcp"
)

// Label values for JWKSRefreshes.
const (
	// OutcomeOK labels a JWKS fetch answered with 200.
	OutcomeOK = "ok"
	// OutcomeError labels a JWKS fetch that failed or got another status.
	OutcomeError = "error"
)

// Metrics is one server's set of series and the registry that holds them.
// The vectors are exported so call sites read like the series they touch:
//
//	m.TokensIssued.WithLabelValues("client_credentials").Inc()
//	m.AuthFailures.WithLabelValues("expired").Inc()
//
// Label values must come from a small fixed set chosen by the code (grant
// types, failure reasons), never from request input, so the number of series
// stays bounded.
type Metrics struct {
	// Registry holds every series below plus the Go runtime and process
	// collectors. Handler serves it.
	Registry *prometheus.Registry

	// HTTPRequests counts served requests by route pattern (e.g. "/token",
	// "/mcp"; "unmatched" when no route matched), method and status code.
	// Recorded by Middleware.
	HTTPRequests *prometheus.CounterVec

	// HTTPDuration observes the time to serve a request, in seconds, by
	// route pattern and method. Recorded by Middleware.
	HTTPDuration *prometheus.HistogramVec

	// TokensIssued counts access tokens issued, by grant type
	// ("authorization_code", "refresh_token", "client_credentials").
	// The authorization server increments it after a successful /token.
	TokensIssued *prometheus.CounterVec

	// AuthFailures counts rejected authentication attempts by reason. On the
	// MCP server: "missing_token", "query_token", "malformed",
	// "bad_signature", "unknown_kid", "expired", "not_yet_valid",
	// "wrong_issuer", "wrong_audience", "wrong_typ", "wrong_token_type",
	// "missing_claim", "malformed_claim" (a scp claim of another shape),
	// "invalid", "inactive" (introspection) and
	// "insufficient_scope". On the authorization server: "invalid_client",
	// "invalid_grant", "invalid_token" (/userinfo, the registration access
	// token), "refresh_reuse" (a rotated refresh token presented again),
	// "code_replay" (an authorization code redeemed twice) and "csrf" (a
	// consent form that failed its CSRF check).
	AuthFailures *prometheus.CounterVec

	// JWKSRefreshes counts HTTP fetches of the authorization server's JWKS
	// made by the MCP server, by outcome (OutcomeOK, OutcomeError). Counted
	// by the transport from CountJWKSFetches, so periodic refreshes and
	// unknown-kid refreshes are both seen.
	JWKSRefreshes *prometheus.CounterVec

	// AuditWrites counts audit records written.
	AuditWrites prometheus.Counter

	// AuditFailures counts audit records that could not be written (with
	// audit.fail_closed the request was refused as well).
	AuditFailures prometheus.Counter
}

// DurationBuckets are the latency histogram's upper bounds in seconds: from
// 50 µs (a cached-token MCP call on loopback) to 2.5 s (a slow RSA-signing
// /token under overload). Prometheus' default buckets start at 5 ms, which
// would put every request of these servers in the first bucket.
var DurationBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
}

// Series selects the event counters a server exports beside the ones every
// server has. A server registers only those it updates, so that no series
// sits at zero forever on a dashboard (an authorization server has no JWKS
// to fetch and no audit log). The counters of series not selected still
// exist, so code may update them; they are not exported.
type Series int

const (
	// TokenSeries is tokens_issued_total: the authorization server.
	TokenSeries Series = 1 << iota
	// JWKSSeries is jwks_refreshes_total: a resource server fetching keys.
	JWKSSeries
	// AuditSeries is audit_writes_total and audit_failures_total.
	AuditSeries
)

// AuthServerSeries is what the authorization server exports;
// MCPServerSeries what the MCP server exports when it verifies JWTs (with
// introspection, or auth switched off, it fetches no JWKS: AuditSeries).
const (
	AuthServerSeries = TokenSeries
	MCPServerSeries  = JWKSSeries | AuditSeries
)

// New creates the series under namespace (NamespaceAuthServer or
// NamespaceMCPServer) in a fresh registry, with the Go runtime and process
// collectors (process_resident_memory_bytes and friends) beside them; of
// the event counters, it registers those series selects.
func New(namespace string, series Series) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern and method.",
			Buckets: DurationBuckets,
		}, []string{"route", "method"}),
		TokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tokens_issued_total",
			Help: "Access tokens issued, by grant type.",
		}, []string{"grant_type"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "auth_failures_total",
			Help: "Rejected authentication attempts, by reason.",
		}, []string{"reason"}),
		JWKSRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jwks_refreshes_total",
			Help: "HTTP fetches of the authorization server's JWKS, by outcome.",
		}, []string{"outcome"}),
		AuditWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "audit_writes_total",
			Help: "Audit records written.",
		}),
		AuditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "audit_failures_total",
			Help: "Audit records that could not be written.",
		}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPRequests, m.HTTPDuration, m.AuthFailures,
	)
	if series&TokenSeries != 0 {
		m.Registry.MustRegister(m.TokensIssued)
	}
	if series&JWKSSeries != 0 {
		m.Registry.MustRegister(m.JWKSRefreshes)
	}
	if series&AuditSeries != 0 {
		m.Registry.MustRegister(m.AuditWrites, m.AuditFailures)
	}
	return m
}

// Handler serves the registry in the Prometheus text format, for
// GET /metrics. The series hold no secrets (label values are fixed by the
// code), so the endpoint needs no authentication on a loopback deployment.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		Registry: m.Registry, // also counts failed scrapes
		// At most this many concurrent scrapes; more get 503 instead of
		// piling up work on a loaded server.
		MaxRequestsInFlight: 4,
	})
}
