// Package mcpserver is the OAuth2-protected MCP server: an MCP server over
// Streamable HTTP (the official Go SDK) that acts as an OAuth 2.0 resource
// server as the MCP authorization specification requires: it publishes
// Protected Resource Metadata (RFC 9728), accepts only bearer tokens issued
// for its own resource (RFC 8707) by its authorization server, answers
// RFC 6750 challenges, checks per-tool scopes and writes an audit record for
// every request.
//
// This file holds the configuration: its keys, defaults and validation.
package mcpserver

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config is the whole configuration of the MCP server. Keys are documented in
// docs/INTERFACES.md and config/mcp_server_config.toml.
type Config struct {
	Server ServerConfig          `mapstructure:"server"`
	Log    LogConfig             `mapstructure:"log"`
	Auth   AuthConfig            `mapstructure:"auth"`
	Tools  map[string]ToolConfig `mapstructure:"tools"`
	Audit  AuditConfig           `mapstructure:"audit"`
}

// ServerConfig is the [server] table.
type ServerConfig struct {
	// Listen is the TCP address to listen on.
	Listen string `mapstructure:"listen"`
	// Resource is this server's resource identifier (RFC 8707 / RFC 9728
	// "resource"): the absolute URL of the MCP endpoint, and the audience a
	// token must carry.
	Resource string `mapstructure:"resource"`
	// Stateless switches the Streamable HTTP transport to stateless mode.
	Stateless bool `mapstructure:"stateless"`
	// AllowedOrigins are Origins accepted besides loopback ones.
	AllowedOrigins []string `mapstructure:"allowed_origins"`
	// CORSOrigins are browser origins that get CORS headers.
	CORSOrigins []string `mapstructure:"cors_origins"`
	// MaxBodyBytes bounds every request body.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes"`
	// Pprof mounts net/http/pprof at /debug/pprof/ for loopback callers.
	// Off by default: profiles expose memory and the command line, and a
	// CPU profile costs the server CPU while it runs.
	Pprof bool `mapstructure:"pprof"`
	// MaxSessionsPerUser bounds the stateful sessions one subject may hold
	// at once, so one user cannot take every session.
	MaxSessionsPerUser int `mapstructure:"max_sessions_per_user"`
}

// LogConfig is the [log] table.
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// AuthConfig is the [auth] table: how tokens are verified.
type AuthConfig struct {
	Enabled                   bool          `mapstructure:"enabled"`
	Mode                      string        `mapstructure:"mode"`
	Issuer                    string        `mapstructure:"issuer"`
	JWKSURL                   string        `mapstructure:"jwks_url"`
	JWKSRefreshInterval       time.Duration `mapstructure:"jwks_refresh_interval"`
	UnknownKIDRateLimit       time.Duration `mapstructure:"unknown_kid_rate_limit"`
	Leeway                    time.Duration `mapstructure:"leeway"`
	Algorithms                []string      `mapstructure:"algorithms"`
	IntrospectionClientID     string        `mapstructure:"introspection_client_id"`
	IntrospectionClientSecret string        `mapstructure:"introspection_client_secret"`
	IntrospectionCacheTTL     time.Duration `mapstructure:"introspection_cache_ttl"`
	AcceptSessionTokenHeader  bool          `mapstructure:"accept_session_token_header"`
	RequiredScope             string        `mapstructure:"required_scope"`
	// RequireAtJWTTyp refuses JWT access tokens whose header typ is not
	// "at+jwt" or "application/at+jwt" (RFC 9068 §4). Off only for
	// authorization servers that type their access tokens "JWT" (Entra ID
	// v2, Keycloak); jwt mode only, introspection has no header to check.
	RequireAtJWTTyp bool `mapstructure:"require_at_jwt_typ"`
}

// ToolConfig is one [tools.<name>] table.
type ToolConfig struct {
	// Scopes are every scope a tools/call of this tool needs.
	Scopes []string `mapstructure:"scopes"`
}

// AuditConfig is the [audit] table.
type AuditConfig struct {
	File       string `mapstructure:"file"`
	Sync       string `mapstructure:"sync"`
	FailClosed bool   `mapstructure:"fail_closed"`
}

// Auth modes.
const (
	ModeJWT           = "jwt"
	ModeIntrospection = "introspection"
)

// supportedAlgorithms is the only algorithms a token may be signed with:
// asymmetric ones, so that a public key can never serve as an HMAC secret and
// "none" is never accepted.
var supportedAlgorithms = []string{"RS256", "ES256"}

// Defaults are the built-in defaults, keyed by dotted config key, for
// config.Load. Every key overridable from the environment is listed here.
func Defaults() map[string]any {
	d := map[string]any{
		"server.listen":                    "127.0.0.1:3003",
		"server.resource":                  "http://localhost:3003/mcp",
		"server.stateless":                 false,
		"server.allowed_origins":           []string{},
		"server.cors_origins":              []string{},
		"server.max_body_bytes":            1048576,
		"server.pprof":                     false,
		"server.max_sessions_per_user":     100,
		"log.level":                        "info",
		"log.format":                       "text",
		"auth.enabled":                     true,
		"auth.mode":                        ModeJWT,
		"auth.issuer":                      "http://localhost:3002",
		"auth.jwks_url":                    "",
		"auth.jwks_refresh_interval":       "5m",
		"auth.unknown_kid_rate_limit":      "10s",
		"auth.leeway":                      "30s",
		"auth.algorithms":                  []string{"RS256", "ES256"},
		"auth.introspection_client_id":     "mcp-service",
		"auth.introspection_client_secret": "",
		"auth.introspection_cache_ttl":     "5s",
		"auth.accept_session_token_header": false,
		"auth.required_scope":              "mcp:read",
		"auth.require_at_jwt_typ":          true,
		"audit.file":                       "logs/audit.jsonl",
		"audit.sync":                       "always",
		"audit.fail_closed":                true,
	}
	for name, scopes := range defaultToolScopes() {
		d["tools."+name+".scopes"] = scopes
	}
	return d
}

// DefaultConfig returns the configuration the Defaults describe, for tests
// and for embedding the server without a config file.
func DefaultConfig() Config {
	tools := map[string]ToolConfig{}
	for name, scopes := range defaultToolScopes() {
		tools[name] = ToolConfig{Scopes: scopes}
	}
	return Config{
		Server: ServerConfig{
			Listen: "127.0.0.1:3003", Resource: "http://localhost:3003/mcp",
			AllowedOrigins: []string{}, CORSOrigins: []string{}, MaxBodyBytes: 1048576,
			MaxSessionsPerUser: 100,
		},
		Log: LogConfig{Level: "info", Format: "text"},
		Auth: AuthConfig{
			Enabled: true, Mode: ModeJWT, Issuer: "http://localhost:3002",
			JWKSRefreshInterval: 5 * time.Minute, UnknownKIDRateLimit: 10 * time.Second,
			Leeway: 30 * time.Second, Algorithms: []string{"RS256", "ES256"},
			IntrospectionClientID: "mcp-service", IntrospectionCacheTTL: 5 * time.Second,
			RequiredScope: "mcp:read", RequireAtJWTTyp: true,
		},
		Tools: tools,
		Audit: AuditConfig{File: "logs/audit.jsonl", Sync: "always", FailClosed: true},
	}
}

// Validate checks the configuration and names the first bad key.
func (c *Config) Validate() error {
	checks := []func() error{c.validateServer, c.validateAuth, c.validateTools, c.validateAudit, c.validateLog}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateServer() error {
	if _, _, err := net.SplitHostPort(c.Server.Listen); err != nil {
		return fmt.Errorf("server.listen: %q is not host:port: %w", c.Server.Listen, err)
	}
	u, err := url.Parse(c.Server.Resource)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		// RFC 8707 §2: the resource is an absolute URI without a fragment.
		return fmt.Errorf("server.resource: %q must be an absolute http(s) URL without fragment", c.Server.Resource)
	}
	if c.Server.MaxBodyBytes <= 0 {
		return fmt.Errorf("server.max_body_bytes: must be positive, got %d", c.Server.MaxBodyBytes)
	}
	if c.Server.MaxSessionsPerUser < 1 || c.Server.MaxSessionsPerUser > maxSessions {
		return fmt.Errorf("server.max_sessions_per_user: must be from 1 to %d, got %d", maxSessions, c.Server.MaxSessionsPerUser)
	}
	for _, o := range append(slices.Clone(c.Server.AllowedOrigins), c.Server.CORSOrigins...) {
		if _, err := normalizeOrigin(o); err != nil {
			return fmt.Errorf("server.allowed_origins/cors_origins: %w", err)
		}
	}
	return nil
}

func (c *Config) validateAuth() error {
	a := &c.Auth
	if a.Mode != ModeJWT && a.Mode != ModeIntrospection {
		return fmt.Errorf("auth.mode: %q is neither %q nor %q", a.Mode, ModeJWT, ModeIntrospection)
	}
	if !a.Enabled {
		if !isLoopbackListen(c.Server.Listen) {
			return fmt.Errorf("auth.enabled: false is allowed only with a loopback server.listen, got %q", c.Server.Listen)
		}
		return nil
	}
	if u, err := url.Parse(a.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("auth.issuer: %q must be an absolute http(s) URL", a.Issuer)
	}
	if a.JWKSURL != "" {
		if u, err := url.Parse(a.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("auth.jwks_url: %q must be an absolute http(s) URL", a.JWKSURL)
		}
	}
	if a.JWKSRefreshInterval < time.Second {
		return fmt.Errorf("auth.jwks_refresh_interval: must be at least 1s, got %s", a.JWKSRefreshInterval)
	}
	if a.UnknownKIDRateLimit <= 0 {
		return fmt.Errorf("auth.unknown_kid_rate_limit: must be positive, got %s", a.UnknownKIDRateLimit)
	}
	if a.Leeway < 0 || a.Leeway > 5*time.Minute {
		return fmt.Errorf("auth.leeway: must be between 0 and 5m, got %s", a.Leeway)
	}
	if len(a.Algorithms) == 0 {
		return fmt.Errorf("auth.algorithms: must not be empty")
	}
	for _, alg := range a.Algorithms {
		if !slices.Contains(supportedAlgorithms, alg) {
			return fmt.Errorf("auth.algorithms: %q is not allowed (only %s)", alg, strings.Join(supportedAlgorithms, ", "))
		}
	}
	if a.Mode == ModeIntrospection {
		if a.IntrospectionClientID == "" || a.IntrospectionClientSecret == "" {
			return fmt.Errorf("auth.introspection_client_secret: introspection mode needs introspection_client_id and introspection_client_secret")
		}
		if a.IntrospectionCacheTTL < 0 || a.IntrospectionCacheTTL > time.Minute {
			return fmt.Errorf("auth.introspection_cache_ttl: must be between 0 and 1m, got %s", a.IntrospectionCacheTTL)
		}
	}
	if !isChallengeScope(a.RequiredScope) {
		return fmt.Errorf("auth.required_scope: %q must be one scope token other than %s", a.RequiredScope, scopeOfflineAccess)
	}
	return nil
}

func (c *Config) validateTools() error {
	known := defaultToolScopes()
	for name, tc := range c.Tools {
		if _, ok := known[name]; !ok {
			return fmt.Errorf("tools.%s: no such tool (known: %s)", name, strings.Join(slices.Sorted(maps.Keys(known)), ", "))
		}
		for _, s := range tc.Scopes {
			if !isChallengeScope(s) {
				return fmt.Errorf("tools.%s.scopes: %q is not a scope token other than %s", name, s, scopeOfflineAccess)
			}
		}
	}
	return nil
}

// scopeOfflineAccess asks the authorization server for a refresh token
// (OpenID Connect Core §11); it grants nothing at a resource.
const scopeOfflineAccess = "offline_access"

// isChallengeScope reports whether s may be a scope this server requires:
// one scope token (RFC 6749 §3.3; no space, and no quote or backslash, so it
// fits a quoted WWW-Authenticate parameter), and not offline_access, which
// the MCP authorization spec (2026-07-28) keeps out of challenges and of
// scopes_supported: a server requiring it would make every client ask for
// refresh tokens whether it wants them or not.
func isChallengeScope(s string) bool {
	return s != "" && s != scopeOfflineAccess && !strings.ContainsAny(s, " \"\\")
}

func (c *Config) validateAudit() error {
	if c.Audit.File == "" {
		return fmt.Errorf("audit.file: must not be empty")
	}
	if _, err := parseSyncPolicy(c.Audit.Sync); err != nil {
		return fmt.Errorf("audit.sync: %w", err)
	}
	return nil
}

func (c *Config) validateLog() error {
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("log.format: %q is not text or json", c.Log.Format)
	}
	return nil
}

// isLoopbackListen reports whether a listen address binds only loopback.
// An empty host (all interfaces) is not loopback.
func isLoopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
