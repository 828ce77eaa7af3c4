package authserver

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/metrics"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/scope"
)

// Config is the whole configuration of the mock authorization server. Its
// mapstructure tags are the keys of config/auth_server_config.toml; the
// fields tagged "-" are for Go callers (tests, embedding) only.
type Config struct {
	Server       ServerConfig       `mapstructure:"server"`
	Log          LogConfig          `mapstructure:"log"`
	Keys         KeysConfig         `mapstructure:"keys"`
	Tokens       TokensConfig       `mapstructure:"tokens"`
	Storage      StorageConfig      `mapstructure:"storage"`
	Registration RegistrationConfig `mapstructure:"registration"`
	CIMD         CIMDConfig         `mapstructure:"cimd"`
	Resources    ResourcesConfig    `mapstructure:"resources"`
	Mock         MockConfig         `mapstructure:"mock"`
	// Scopes are the scopes this server knows (scopes_supported).
	Scopes []string `mapstructure:"scopes"`
	// Users are the mock users one can log in as.
	Users []User `mapstructure:"users"`
	// Clients are the preregistered clients.
	Clients []ClientConfig `mapstructure:"clients"`

	// Now is the clock; nil means time.Now. Tests inject a fake clock so
	// that expiry is tested without sleeping.
	Now func() time.Time `mapstructure:"-"`
	// Logger receives the server's structured logs; nil means slog.Default().
	Logger *slog.Logger `mapstructure:"-"`
	// Metrics, when set, records HTTP and token metrics and is served at
	// GET /metrics.
	Metrics *metrics.Metrics `mapstructure:"-"`
	// CIMDRootCAs, when set, replaces the system roots for fetching client
	// ID metadata documents (tests serve them from httptest.NewTLSServer).
	CIMDRootCAs *x509.CertPool `mapstructure:"-"`
}

// ServerConfig is the [server] table.
type ServerConfig struct {
	Listen       string `mapstructure:"listen"`
	Issuer       string `mapstructure:"issuer"`
	TLSCertFile  string `mapstructure:"tls_cert_file"`
	TLSKeyFile   string `mapstructure:"tls_key_file"`
	MaxBodyBytes int64  `mapstructure:"max_body_bytes"`
	// AllowInsecureHTTP accepts an http issuer on a host that is not
	// loopback (RFC 8414 §2 requires https): for a lab network only.
	AllowInsecureHTTP bool `mapstructure:"allow_insecure_http"`
	// CORSOrigins are the browser origins (scheme://host[:port]) that get
	// CORS headers at /token, /register, /revoke and /userinfo; "*" allows
	// any origin (development only). Empty: none.
	CORSOrigins []string `mapstructure:"cors_origins"`
	// Pprof mounts net/http/pprof at /debug/pprof/ for loopback callers
	// only. Off by default: profiles reveal memory contents and let a
	// caller burn CPU.
	Pprof bool `mapstructure:"pprof"`
}

// LogConfig is the [log] table (used by the binary's main).
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// KeysConfig is the [keys] table.
type KeysConfig struct {
	// PrivateKeyFile is a PEM private key; generated and saved 0600 when
	// missing. Empty keeps a generated key in memory only (tests).
	PrivateKeyFile string `mapstructure:"private_key_file"`
	// Algorithm is RS256 or ES256.
	Algorithm string `mapstructure:"algorithm"`
}

// TokensConfig is the [tokens] table: lifetimes.
type TokensConfig struct {
	AccessTokenTTL  time.Duration `mapstructure:"access_token_ttl"`
	RefreshTokenTTL time.Duration `mapstructure:"refresh_token_ttl"`
	IDTokenTTL      time.Duration `mapstructure:"id_token_ttl"`
	CodeTTL         time.Duration `mapstructure:"code_ttl"`
}

// StorageConfig is the [storage] table.
type StorageConfig struct {
	Driver     string `mapstructure:"driver"`
	SQLitePath string `mapstructure:"sqlite_path"`
}

// RegistrationConfig is the [registration] table (RFC 7591).
type RegistrationConfig struct {
	Enabled            bool   `mapstructure:"enabled"`
	InitialAccessToken string `mapstructure:"initial_access_token"`
	MaxClients         int    `mapstructure:"max_clients"`
	// ClientTTL: a dynamically registered client neither registered nor
	// used for this long, and holding no live refresh token, is removed
	// (when registration is full, and as expired records are pruned), so
	// abandoned registrations cannot keep max_clients reached. 0: never.
	ClientTTL time.Duration `mapstructure:"client_ttl"`
}

// CIMDConfig is the [cimd] table (Client ID Metadata Documents).
type CIMDConfig struct {
	Enabled       bool          `mapstructure:"enabled"`
	AllowLoopback bool          `mapstructure:"allow_loopback"`
	FetchTimeout  time.Duration `mapstructure:"fetch_timeout"`
}

// ResourcesConfig is the [resources] table (RFC 8707).
type ResourcesConfig struct {
	// Allowed, when not empty, is the allowlist of resource indicators.
	Allowed []string `mapstructure:"allowed"`
}

// MockConfig is the [mock] table: the knobs that make this a mock.
type MockConfig struct {
	AutoApprove bool   `mapstructure:"auto_approve"`
	DefaultUser string `mapstructure:"default_user"`
	ControlAPI  bool   `mapstructure:"control_api"`
}

// User is one mock user.
type User struct {
	Subject string `mapstructure:"subject" json:"subject"`
	Email   string `mapstructure:"email" json:"email"`
	Name    string `mapstructure:"name" json:"name"`
}

// ClientConfig is one preregistered client, as in the TOML and in
// POST /control/clients.
type ClientConfig struct {
	ClientID                string   `mapstructure:"client_id" json:"client_id"`
	ClientSecret            string   `mapstructure:"client_secret" json:"client_secret,omitempty"`
	ClientName              string   `mapstructure:"client_name" json:"client_name,omitempty"`
	RedirectURIs            []string `mapstructure:"redirect_uris" json:"redirect_uris,omitempty"`
	GrantTypes              []string `mapstructure:"grant_types" json:"grant_types,omitempty"`
	Scopes                  []string `mapstructure:"scopes" json:"scopes,omitempty"`
	TokenEndpointAuthMethod string   `mapstructure:"token_endpoint_auth_method" json:"token_endpoint_auth_method,omitempty"`
}

// Auth methods, grant types and algorithms this server supports.
const (
	AuthNone              = "none"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"

	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

var (
	supportedAuthMethods = []string{AuthNone, AuthClientSecretBasic, AuthClientSecretPost}
	supportedGrants      = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}
)

// DefaultScopes are the scopes the server knows unless configured otherwise.
var DefaultScopes = []string{"openid", "profile", "email", "offline_access", "mcp:read", "mcp:write", "mcp:audit"}

// Defaults returns the built-in defaults as dotted keys for pkg/config.
// Every key that the environment may override appears here. The mock
// switches (auto-approve, control API) are off in code; the shipped TOML
// turns them on.
func Defaults() map[string]any {
	return map[string]any{
		"server.listen":                     "127.0.0.1:3002",
		"server.issuer":                     "http://localhost:3002",
		"server.tls_cert_file":              "",
		"server.tls_key_file":               "",
		"server.max_body_bytes":             65536,
		"server.allow_insecure_http":        false,
		"server.cors_origins":               []string{},
		"server.pprof":                      false,
		"log.level":                         "info",
		"log.format":                        "text",
		"keys.private_key_file":             "keys/private_key.pem",
		"keys.algorithm":                    "RS256",
		"tokens.access_token_ttl":           "1h",
		"tokens.refresh_token_ttl":          "720h",
		"tokens.id_token_ttl":               "1h",
		"tokens.code_ttl":                   "60s",
		"storage.driver":                    "memory",
		"storage.sqlite_path":               "data/auth_server.db",
		"registration.enabled":              true,
		"registration.initial_access_token": "",
		"registration.max_clients":          1000,
		"registration.client_ttl":           "24h",
		"cimd.enabled":                      true,
		"cimd.allow_loopback":               false,
		"cimd.fetch_timeout":                "5s",
		"resources.allowed":                 []string{},
		"mock.auto_approve":                 false,
		"mock.default_user":                 "alice",
		"mock.control_api":                  false,
		"scopes":                            DefaultScopes,
		"users":                             defaultUsersAny(),
		"clients":                           defaultClientsAny(),
	}
}

// DefaultUsers are the shipped mock users.
func DefaultUsers() []User {
	return []User{
		{Subject: "alice", Email: "alice@example.com", Name: "Alice Example"},
		{Subject: "bob", Email: "bob@example.com", Name: "Bob Example"},
	}
}

// DefaultClients are the shipped preregistered clients. The service
// client's secret is a development secret, published on purpose.
func DefaultClients() []ClientConfig {
	return []ClientConfig{
		{
			ClientID:                "http-oauth2-client",
			ClientName:              "HTTP OAuth2 MCP client",
			RedirectURIs:            []string{"http://127.0.0.1:3001/callback"},
			GrantTypes:              []string{GrantAuthorizationCode, GrantRefreshToken},
			Scopes:                  slices.Clone(DefaultScopes),
			TokenEndpointAuthMethod: AuthNone,
		},
		{
			ClientID:                "mcp-service",
			ClientSecret:            "mcp-service-dev-secret",
			ClientName:              "MCP service",
			GrantTypes:              []string{GrantClientCredentials},
			Scopes:                  []string{"mcp:read", "mcp:write", "mcp:audit"},
			TokenEndpointAuthMethod: AuthClientSecretBasic,
		},
	}
}

func defaultUsersAny() []map[string]any {
	var out []map[string]any
	for _, u := range DefaultUsers() {
		out = append(out, map[string]any{"subject": u.Subject, "email": u.Email, "name": u.Name})
	}
	return out
}

func defaultClientsAny() []map[string]any {
	var out []map[string]any
	for _, c := range DefaultClients() {
		out = append(out, map[string]any{
			"client_id": c.ClientID, "client_secret": c.ClientSecret, "client_name": c.ClientName,
			"redirect_uris": c.RedirectURIs, "grant_types": c.GrantTypes, "scopes": c.Scopes,
			"token_endpoint_auth_method": c.TokenEndpointAuthMethod,
		})
	}
	return out
}

// DefaultConfig returns the built-in configuration as a struct, for Go
// callers that do not go through pkg/config. Keys stay in memory.
func DefaultConfig() Config {
	return Config{
		Server:       ServerConfig{Listen: "127.0.0.1:3002", Issuer: "http://localhost:3002", MaxBodyBytes: 65536, CORSOrigins: []string{}},
		Log:          LogConfig{Level: "info", Format: "text"},
		Keys:         KeysConfig{Algorithm: "RS256"},
		Tokens:       TokensConfig{AccessTokenTTL: time.Hour, RefreshTokenTTL: 720 * time.Hour, IDTokenTTL: time.Hour, CodeTTL: 60 * time.Second},
		Storage:      StorageConfig{Driver: "memory", SQLitePath: "data/auth_server.db"},
		Registration: RegistrationConfig{Enabled: true, MaxClients: 1000, ClientTTL: 24 * time.Hour},
		CIMD:         CIMDConfig{Enabled: true, FetchTimeout: 5 * time.Second},
		Mock:         MockConfig{DefaultUser: "alice"},
		Scopes:       slices.Clone(DefaultScopes),
		Users:        DefaultUsers(),
		Clients:      DefaultClients(),
	}
}

// Validate checks the configuration and names the first bad key.
func (c *Config) Validate() error {
	if c.Server.Listen == "" {
		return fmt.Errorf("server.listen: must not be empty")
	}
	if err := validateIssuer(c.Server.Issuer); err != nil {
		return fmt.Errorf("server.issuer: %w", err)
	}
	if insecureIssuer(c.Server.Issuer) && !c.Server.AllowInsecureHTTP {
		return fmt.Errorf("server.issuer: %q is http on a host that is not loopback; RFC 8414 §2 requires https "+
			"(set server.tls_cert_file and server.tls_key_file, or put a TLS proxy in front and use an https issuer), "+
			"or set server.allow_insecure_http = true for a lab network", c.Server.Issuer)
	}
	if (c.Server.TLSCertFile == "") != (c.Server.TLSKeyFile == "") {
		return fmt.Errorf("server.tls_cert_file: tls_cert_file and tls_key_file must be set together")
	}
	for i, o := range c.Server.CORSOrigins {
		if o == corsAnyOrigin {
			continue
		}
		if _, err := normalizeOrigin(o); err != nil {
			return fmt.Errorf("server.cors_origins[%d]: %w", i, err)
		}
	}
	if c.Server.MaxBodyBytes < 1024 {
		return fmt.Errorf("server.max_body_bytes: must be at least 1024, got %d", c.Server.MaxBodyBytes)
	}
	if c.Keys.Algorithm != "RS256" && c.Keys.Algorithm != "ES256" {
		return fmt.Errorf("keys.algorithm: must be RS256 or ES256, got %q", c.Keys.Algorithm)
	}
	if err := c.validateDurations(); err != nil {
		return err
	}
	switch c.Storage.Driver {
	case "memory":
	case "sqlite":
		if c.Storage.SQLitePath == "" {
			return fmt.Errorf("storage.sqlite_path: required when storage.driver is sqlite")
		}
	default:
		return fmt.Errorf("storage.driver: must be memory or sqlite, got %q", c.Storage.Driver)
	}
	if c.Registration.MaxClients < 0 {
		return fmt.Errorf("registration.max_clients: must not be negative")
	}
	if c.Registration.ClientTTL < 0 {
		return fmt.Errorf("registration.client_ttl: must not be negative (0 keeps clients for ever), got %s", c.Registration.ClientTTL)
	}
	for i, r := range c.Resources.Allowed {
		if err := validateResource(r); err != nil {
			return fmt.Errorf("resources.allowed[%d]: %w", i, err)
		}
	}
	if len(c.Scopes) == 0 {
		return fmt.Errorf("scopes: must not be empty")
	}
	for i, s := range c.Scopes {
		if !validScopeToken(s) {
			return fmt.Errorf("scopes[%d]: %q is not a valid scope token", i, s)
		}
	}
	if err := c.validateUsers(); err != nil {
		return err
	}
	return c.validateClients()
}

func (c *Config) validateDurations() error {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"tokens.access_token_ttl", c.Tokens.AccessTokenTTL},
		{"tokens.refresh_token_ttl", c.Tokens.RefreshTokenTTL},
		{"tokens.id_token_ttl", c.Tokens.IDTokenTTL},
		{"tokens.code_ttl", c.Tokens.CodeTTL},
		{"cimd.fetch_timeout", c.CIMD.FetchTimeout},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s: must be a positive duration, got %s", d.key, d.v)
		}
	}
	return nil
}

func (c *Config) validateUsers() error {
	seen := map[string]bool{}
	for i, u := range c.Users {
		if err := validateUser(u); err != nil {
			return fmt.Errorf("users[%d]: %w", i, err)
		}
		if seen[u.Subject] {
			return fmt.Errorf("users[%d].subject: duplicate %q", i, u.Subject)
		}
		seen[u.Subject] = true
	}
	if c.Mock.DefaultUser != "" && !seen[c.Mock.DefaultUser] {
		return fmt.Errorf("mock.default_user: %q is not one of [[users]]", c.Mock.DefaultUser)
	}
	if c.Mock.AutoApprove && c.Mock.DefaultUser == "" {
		return fmt.Errorf("mock.default_user: required when mock.auto_approve is true")
	}
	return nil
}

func validateUser(u User) error {
	if u.Subject == "" || len(u.Subject) > 255 {
		return fmt.Errorf("subject: must be 1 to 255 characters")
	}
	return nil
}

func (c *Config) validateClients() error {
	seen := map[string]bool{}
	for i, cl := range c.Clients {
		if err := validateClientConfig(cl, c.Scopes); err != nil {
			return fmt.Errorf("clients[%d].%w", i, err)
		}
		if seen[cl.ClientID] {
			return fmt.Errorf("clients[%d].client_id: duplicate %q", i, cl.ClientID)
		}
		seen[cl.ClientID] = true
	}
	return nil
}

// validateClientConfig checks one configured client; the error starts with
// the field name so callers can prefix the table path.
func validateClientConfig(cl ClientConfig, scopes []string) error {
	if cl.ClientID == "" || len(cl.ClientID) > 255 {
		return fmt.Errorf("client_id: must be 1 to 255 characters")
	}
	if !slices.Contains(supportedAuthMethods, cl.TokenEndpointAuthMethod) {
		return fmt.Errorf("token_endpoint_auth_method: must be one of %s", strings.Join(supportedAuthMethods, ", "))
	}
	confidential := cl.TokenEndpointAuthMethod != AuthNone
	if confidential && cl.ClientSecret == "" {
		return fmt.Errorf("client_secret: required for a confidential client")
	}
	if !confidential && cl.ClientSecret != "" {
		return fmt.Errorf("client_secret: a public client (none) must not have a secret")
	}
	if len(cl.GrantTypes) == 0 {
		return fmt.Errorf("grant_types: must not be empty")
	}
	for _, g := range cl.GrantTypes {
		if !slices.Contains(supportedGrants, g) {
			return fmt.Errorf("grant_types: unsupported %q", g)
		}
	}
	if slices.Contains(cl.GrantTypes, GrantClientCredentials) && !confidential {
		return fmt.Errorf("grant_types: client_credentials needs a confidential client")
	}
	if slices.Contains(cl.GrantTypes, GrantAuthorizationCode) && len(cl.RedirectURIs) == 0 {
		return fmt.Errorf("redirect_uris: required for authorization_code")
	}
	for _, u := range cl.RedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return fmt.Errorf("redirect_uris: %w", err)
		}
	}
	for _, s := range cl.Scopes {
		if !slices.Contains(scopes, s) {
			return fmt.Errorf("scopes: %q is not in scopes", s)
		}
	}
	return nil
}

func validateIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http(s) URL, got %q", issuer)
	}
	// RFC 8414 §2: the issuer has no query or fragment.
	if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(issuer, "/") {
		return fmt.Errorf("must have no query, fragment or trailing slash, got %q", issuer)
	}
	return nil
}

// insecureIssuer reports an http issuer whose host is not loopback
// (localhost, 127.0.0.0/8, ::1): the only plain-HTTP issuers a development
// mock may use without saying so.
func insecureIssuer(issuer string) bool {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err != nil || !a.Unmap().IsLoopback()
}

// validScopeToken is one scope-token of RFC 6749 §3.3, at most 128 bytes
// (what clients may ask for and register is bounded).
func validScopeToken(s string) bool {
	return len(s) <= 128 && scope.ValidToken(s)
}
