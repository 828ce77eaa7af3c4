package mcpserver

// This file assembles the server: the SDK's MCP server and Streamable HTTP
// handler behind the authorization pipeline, on a chi router with
// /healthz, /readyz, /mcp, the RFC 9728 well-known documents and
// /audit-logs.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/metrics"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/requestid"
)

// Version is reported as the MCP server implementation version.
const Version = "0.1.0"

// Options are the dependencies a caller may inject (tests do).
type Options struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Clock defaults to time.Now; token expiry and audit times use it.
	Clock func() time.Time
	// HTTPClient is used for metadata, JWKS and introspection requests;
	// defaults to a client with a 10s timeout.
	HTTPClient *http.Client
	// Metrics defaults to a fresh metrics.New(metrics.NamespaceMCPServer,
	// ...) with the series this configuration updates, served at
	// GET /metrics.
	Metrics *metrics.Metrics
}

// Server is the protected MCP server.
type Server struct {
	cfg                 Config
	logger              *slog.Logger
	clock               func() time.Time
	verifier            tokenVerifier
	scopes              *toolScopes
	audit               *auditLog
	notes               *noteStore
	origins             *originPolicy
	resourceMetadataURL string
	metrics             *metrics.Metrics
	maxSessions         int
	userSessions        *sessionsPerSubject
	handler             http.Handler
}

// New validates cfg and builds the server. Call Start to begin loading the
// authorization server's keys, Handler to serve, Close at the end.
func New(cfg Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	s := &Server{cfg: cfg, logger: opts.Logger, clock: opts.Clock, maxSessions: maxSessions}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	s.metrics = opts.Metrics
	if s.metrics == nil {
		s.metrics = metrics.New(metrics.NamespaceMCPServer, metricsSeries(cfg.Auth))
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	// Calls made while serving a request carry its X-Request-Id, so the
	// authorization server's logs can be matched with ours.
	client = &http.Client{Timeout: client.Timeout, Transport: &requestid.Transport{Base: client.Transport}}
	var err error
	if s.resourceMetadataURL, err = resourceMetadataURL(cfg.Server.Resource); err != nil {
		return nil, err
	}
	if s.origins, err = newOriginPolicy(cfg.Server.AllowedOrigins, cfg.Server.CORSOrigins); err != nil {
		return nil, fmt.Errorf("server.allowed_origins: %w", err)
	}
	s.scopes = newToolScopes(cfg.Auth.RequiredScope, cfg.Tools)
	s.notes = newNoteStore(s.clock)
	if cfg.Auth.Enabled {
		s.verifier = s.newVerifier(client)
	}
	if s.audit, err = openAuditLog(cfg.Audit.File, cfg.Audit.Sync, s.clock); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

func (s *Server) newVerifier(client *http.Client) tokenVerifier {
	if s.cfg.Auth.Mode == ModeIntrospection {
		return newIntrospectionVerifier(s.cfg.Auth, s.cfg.Server.Resource, s.clock, client, s.logger)
	}
	v := newJWTVerifier(s.cfg.Auth, s.cfg.Server.Resource, s.clock, client, s.logger)
	// Count every JWKS fetch on the wire (periodic and unknown-kid ones):
	// mcp_jwks_refreshes_total is how a flood of unknown kids is observed.
	v.jwksClient = &http.Client{Timeout: client.Timeout,
		Transport: s.metrics.CountJWKSFetches(limitBody{base: closeAfterUse{base: client.Transport}, max: maxJWKSBytes})}
	return v
}

// maxJWKSBytes bounds a JWKS response: jwkset decodes the body unbounded.
const maxJWKSBytes = 1 << 20

// limitBody caps response bodies read through it.
type limitBody struct {
	base http.RoundTripper
	max  int64
}

// RoundTrip implements http.RoundTripper.
func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	base := l.base
	if base == nil {
		base = http.DefaultTransport
	}
	res, err := base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	res.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(res.Body, l.max), res.Body}
	return res, nil
}

// metricsSeries is what the server exports: audit counters always, JWKS
// fetches only when it verifies JWTs itself (introspection and auth
// switched off fetch no keys, and a series stuck at zero misleads).
func metricsSeries(a AuthConfig) metrics.Series {
	if a.Enabled && a.Mode == ModeJWT {
		return metrics.MCPServerSeries
	}
	return metrics.AuditSeries
}

// closeAfterUse asks for the connection of each request to be closed once
// its response is read. Metadata is fetched at start, the JWKS at start and
// then once per refresh interval (minutes; for an unknown kid, at most once
// per its rate limit), past the transport's idle timeout: a kept-alive
// connection would only hold a socket and two goroutines, whose stacks the
// collector walks in every cycle, in the server's busiest minutes after
// start.
type closeAfterUse struct {
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper, on a copy of r (a RoundTripper
// must not change the request it is given).
func (c closeAfterUse) RoundTrip(r *http.Request) (*http.Response, error) {
	base := c.base
	if base == nil {
		base = http.DefaultTransport
	}
	r = r.Clone(r.Context())
	r.Close = true
	return base.RoundTrip(r)
}

// Start begins loading the authorization server's keys in the background;
// it returns at once. ctx ends the background work.
func (s *Server) Start(ctx context.Context) {
	if !s.cfg.Auth.Enabled {
		s.logger.Warn("AUTHENTICATION IS DISABLED (auth.enabled = false): every caller is anonymous; for protocol tests and benchmarks only",
			"listen", s.cfg.Server.Listen)
		return
	}
	s.verifier.Start(ctx)
}

// Handler is the server's HTTP handler. Like any handler served by
// net/http, it is given each request once: once a token is verified it
// replaces the request's Authorization header with a stand-in (and drops
// X-Session-Token), so that the SDK and the tools never see the token. A
// caller that reuses a request, in tests or a retrying proxy, must set its
// headers again.
func (s *Server) Handler() http.Handler { return s.handler }

// Close flushes and closes the audit log.
func (s *Server) Close() error { return s.audit.Close() }

// Ready reports whether the server can verify tokens and write audit
// records.
func (s *Server) Ready() error {
	if s.cfg.Auth.Enabled && !s.verifier.Ready() {
		return ErrNotReady
	}
	if err := s.audit.Healthy(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(requestid.Middleware, s.metrics.Middleware)
	// Operational endpoints, for loopback callers only (the load tool reads
	// /metrics; pprof, when server.pprof is on, for profiling under load).
	r.Method(http.MethodGet, "/metrics", metrics.LoopbackOnly(s.metrics.Handler()))
	if s.cfg.Server.Pprof {
		r.Mount(metrics.PprofPrefix, metrics.Pprof())
	}
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.readyz)
	meta := auth.ProtectedResourceMetadataHandler(
		protectedResourceMetadata(s.cfg.Server.Resource, s.cfg.Auth.Issuer, s.scopes.supported()))
	for _, p := range resourceMetadataPaths(s.cfg.Server.Resource) {
		r.Method(http.MethodGet, p, meta)
		r.Method(http.MethodOptions, p, meta)
	}
	r.Group(func(r chi.Router) {
		r.Use(s.auditMiddleware, s.origins.middleware(s.refuseOrigin))
		r.Handle("/mcp", s.mcpHandler())
		r.Get("/audit-logs", s.auditLogsHandler())
	})
	return r
}

// mcpHandler is the SDK's Streamable HTTP handler behind the pipeline.
func (s *Server) mcpHandler() http.Handler {
	srv := mcp.NewServer(&mcp.Implementation{Name: "http-mcp-mock-server", Title: resourceName, Version: Version},
		&mcp.ServerOptions{Logger: s.logger, Instructions: "A mock MCP server protected by OAuth 2.0; call whoami to see who you are."})
	s.addTools(srv)
	s.addResources(srv)
	s.addPrompts(srv)
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{
		Stateless:           s.cfg.Server.Stateless,
		Logger:              s.logger,
		MaxRequestBodyBytes: s.cfg.Server.MaxBodyBytes,
		SessionTimeout:      30 * time.Minute, // bounds the session map
	})
	// At most maxSessions are open at once, so past twice as many ids, at
	// least half are of closed sessions.
	s.userSessions = newSessionsPerSubject(s.cfg.Server.MaxSessionsPerUser, 2*s.maxSessions,
		func(ids []string) map[string]bool { return openAmong(srv, ids) })
	var h http.Handler = s.limitSessions(srv, sdk)
	if s.cfg.Auth.Enabled {
		h = s.requireMCPAccess(h)
	}
	return s.peekBody(h)
}

func (s *Server) refuseOrigin(w http.ResponseWriter, r *http.Request, status int, reason string) {
	st := stateFrom(r.Context())
	st.outcome, st.reason = OutcomeDenied, reason
	writeJSONRPCError(w, status, -32600, "Forbidden: "+reason)
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.Ready(); err != nil {
		w.Header().Set("Retry-After", "5")
		status := "not_ready"
		if !errors.Is(err, ErrNotReady) {
			status = "audit_unavailable"
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": status, "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
