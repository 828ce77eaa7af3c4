// Package authserver is a standards-correct mock OAuth 2.1 / OpenID Connect
// authorization server for development and tests: authorization code with
// PKCE (S256 only), refresh-token rotation with reuse detection, client
// credentials, dynamic client registration, client ID metadata documents,
// introspection, revocation, userinfo and a control API that tests drive.
//
// New builds a *Server, which is an http.Handler: Go users can run it in
// httptest and drive it with the same controls as the HTTP control API
// (QueueFault, DenyNextLogin, RotateKey, ...).
//
// Not supported, on purpose: the implicit and password grants, PKCE plain,
// private_key_jwt, JAR/PAR, and more than one resource indicator per request.
package authserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/metrics"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/requestid"
)

// Server is the authorization server. Its ServeHTTP is a chi router.
type Server struct {
	cfg     Config
	issuer  string
	now     func() time.Time
	log     *slog.Logger
	keys    *keySet
	store   store.Store
	cimd    *cimdResolver
	cors    corsPolicy
	router  chi.Router
	faults  *faultQueue
	stats   *statsRecorder
	consent *pendingStore
	// codesIssued paces the pruning of expired records.
	codesIssued atomic.Int64

	mu        sync.Mutex
	users     map[string]User
	lifetimes TokensConfig
	denyNext  int
}

// New validates cfg and builds the server: it opens the store, loads (or
// generates) the signing key and seeds the configured clients.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		issuer:    cfg.Server.Issuer,
		now:       cfg.Now,
		log:       cfg.Logger,
		lifetimes: cfg.Tokens,
		faults:    newFaultQueue(),
		stats:     newStatsRecorder(cfg.Mock.ControlAPI),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.consent = newPendingStore(s.now)
	s.cors = newCORSPolicy(cfg.Server.CORSOrigins)
	if insecureIssuer(s.issuer) {
		s.log.Warn("server.allow_insecure_http: the issuer is plain http on a host that is not loopback; tokens, codes and secrets cross the network in clear (RFC 8414 §2 requires https)", "issuer", s.issuer)
	}
	key, err := loadOrCreateKey(cfg.Keys.PrivateKeyFile, cfg.Keys.Algorithm, s.log)
	if err != nil {
		return nil, err
	}
	s.keys = &keySet{current: key}
	if s.store, err = openStore(cfg, s.now); err != nil {
		return nil, err
	}
	s.cimd = newCIMDResolver(cfg.CIMD, cfg.CIMDRootCAs, s.now, cfg.Scopes)
	if err := s.seed(context.Background()); err != nil {
		_ = s.store.Close()
		return nil, err
	}
	s.router = s.routes()
	return s, nil
}

func openStore(cfg Config, now func() time.Time) (store.Store, error) {
	if cfg.Storage.Driver == "sqlite" {
		st, err := store.OpenSQLite(filepath.Clean(cfg.Storage.SQLitePath), now)
		if err != nil {
			return nil, fmt.Errorf("storage.sqlite_path: %w", err)
		}
		return st, nil
	}
	return store.NewMemory(now, 0), nil
}

// seed loads the configured users and clients (configured clients are
// rewritten on every start so the TOML stays the source of truth).
func (s *Server) seed(ctx context.Context) error {
	s.mu.Lock()
	s.users = map[string]User{}
	for _, u := range s.cfg.Users {
		s.users[u.Subject] = u
	}
	s.lifetimes = s.cfg.Tokens
	s.denyNext = 0
	s.mu.Unlock()
	for _, c := range s.cfg.Clients {
		if err := s.store.PutClient(ctx, clientFromConfig(c, s.now())); err != nil {
			return fmt.Errorf("seed client %s: %w", c.ClientID, err)
		}
	}
	return nil
}

// pruneEvery is how many codes are issued between two sweeps of expired
// records, so the store stays bounded without a background goroutine.
const pruneEvery = 1024

func (s *Server) maybePrune(ctx context.Context) {
	if s.codesIssued.Add(1)%pruneEvery == 0 {
		if err := s.store.DeleteExpired(ctx, s.now()); err != nil {
			s.log.WarnContext(ctx, "prune expired records", "err", err)
		}
		s.sweepIdleClients(ctx)
	}
}

// Close releases the store.
func (s *Server) Close() error { return s.store.Close() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Issuer returns the issuer identifier.
func (s *Server) Issuer() string { return s.issuer }

// Endpoint paths, relative to the issuer.
const (
	pathAuthorize  = "/authorize"
	pathDecision   = "/authorize/decision"
	pathToken      = "/token"
	pathJWKS       = "/jwks"
	pathRegister   = "/register"
	pathIntrospect = "/introspect"
	pathRevoke     = "/revoke"
	pathUserinfo   = "/userinfo"
)

func (s *Server) endpointURL(path string) string { return s.issuer + path }

// issuerPath is the path part of the issuer ("" for http://host:port), under
// which the endpoints are served.
func (s *Server) issuerPath() string {
	u, err := url.Parse(s.issuer)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(requestid.Middleware)
	if s.cfg.Metrics != nil {
		r.Use(s.cfg.Metrics.Middleware)
	}
	r.Use(s.securityHeaders, s.limitBody)
	if s.cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", metrics.LoopbackOnly(s.cfg.Metrics.Handler()))
	}
	if s.cfg.Server.Pprof {
		// Pprof answers loopback callers only (metrics.LoopbackOnly).
		r.Mount(metrics.PprofPrefix, metrics.Pprof())
	}
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	p := s.issuerPath()
	r.With(s.instrument("metadata")).Group(func(r chi.Router) {
		// RFC 8414 §3.1: the well-known suffix goes before the issuer's path.
		r.Get("/.well-known/oauth-authorization-server"+p, s.handleMetadata)
		r.Get("/.well-known/openid-configuration"+p, s.handleMetadata)
		if p != "" {
			// OIDC Discovery §4 appends it to the issuer instead.
			r.Get(p+"/.well-known/openid-configuration", s.handleMetadata)
		}
	})
	r.With(s.instrument("jwks")).Group(func(r chi.Router) {
		r.Get(p+pathJWKS, s.handleJWKS)
		r.Get("/.well-known/jwks.json", s.handleJWKS)
	})
	r.With(s.instrument("authorize")).Group(func(r chi.Router) {
		r.Get(p+pathAuthorize, s.handleAuthorize)
		r.Post(p+pathDecision, s.handleDecision)
	})
	// Browser-based clients call these four themselves (cors.go).
	r.With(s.corsHeaders, s.instrument("token")).Post(p+pathToken, s.handleToken)
	r.With(s.corsHeaders, s.instrument("register")).Post(p+pathRegister, s.handleRegister)
	r.With(s.instrument("introspect")).Post(p+pathIntrospect, s.handleIntrospect)
	r.With(s.corsHeaders, s.instrument("revoke")).Post(p+pathRevoke, s.handleRevoke)
	r.With(s.corsHeaders, s.instrument("userinfo")).Group(func(r chi.Router) {
		r.Get(p+pathUserinfo, s.handleUserinfo)
		r.Post(p+pathUserinfo, s.handleUserinfo)
	})
	for _, path := range []string{pathToken, pathRegister, pathRevoke} {
		r.Options(p+path, s.preflight(http.MethodPost))
	}
	r.Options(p+pathUserinfo, s.preflight("GET, POST"))
	if s.cfg.Mock.ControlAPI {
		r.Route("/control", s.controlRoutes)
	}
	return r
}

// securityHeaders sets the headers every response carries: no framing
// (clickjacking of the consent page), no MIME sniffing, no referrer (the
// authorization URL carries state and PKCE challenge).
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// limitBody caps every request body at server.max_body_bytes.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.Server.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// lifetimesNow returns the current token lifetimes (the control API can
// change them at run time).
func (s *Server) lifetimesNow() TokensConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lifetimes
}

// user returns the mock user with subject.
func (s *Server) user(subject string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[subject]
	return u, ok
}

// userByHint finds a user by subject or email (login_hint may be either).
func (s *Server) userByHint(hint string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[hint]; ok {
		return u, true
	}
	for _, u := range s.users {
		if u.Email != "" && strings.EqualFold(u.Email, hint) {
			return u, true
		}
	}
	return User{}, false
}

// usersSorted lists the users for the consent page.
func (s *Server) usersSorted() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u)
	}
	sortUsers(out)
	return out
}
