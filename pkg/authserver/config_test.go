package authserver

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/config"
)

func TestDefaultsLoadAndValidate(t *testing.T) {
	var cfg Config
	require.NoError(t, config.Load(config.Options{EnvPrefix: "AUTHTEST", Defaults: Defaults()}, &cfg))
	require.NoError(t, cfg.Validate())
	assert.Equal(t, "127.0.0.1:3002", cfg.Server.Listen)
	assert.Equal(t, "http://localhost:3002", cfg.Server.Issuer)
	assert.Equal(t, time.Hour, cfg.Tokens.AccessTokenTTL)
	assert.Equal(t, 720*time.Hour, cfg.Tokens.RefreshTokenTTL)
	assert.Equal(t, 60*time.Second, cfg.Tokens.CodeTTL)
	assert.False(t, cfg.Mock.AutoApprove, "safe default")
	assert.False(t, cfg.Mock.ControlAPI, "safe default")
	assert.Equal(t, DefaultUsers(), cfg.Users)
	require.Len(t, cfg.Clients, 2)
	assert.Equal(t, "mcp-service", cfg.Clients[1].ClientID)
	def := DefaultConfig()
	def.Keys.PrivateKeyFile = cfg.Keys.PrivateKeyFile
	assert.Equal(t, def.Server, cfg.Server)
	assert.Equal(t, def.Tokens, cfg.Tokens)
	assert.Equal(t, 24*time.Hour, cfg.Registration.ClientTTL)
}

func TestShippedConfigFile(t *testing.T) {
	var cfg Config
	file := filepath.Join("..", "..", "config", "auth_server_config.toml")
	t.Setenv("AUTHTEST_SERVER_LISTEN", "127.0.0.1:4444")
	t.Setenv("AUTHTEST_RESOURCES_ALLOWED", "https://a.example/mcp, https://b.example/mcp")
	require.NoError(t, config.Load(config.Options{EnvPrefix: "AUTHTEST", File: file, Required: true, Defaults: Defaults()}, &cfg))
	require.NoError(t, cfg.Validate())
	assert.True(t, cfg.Mock.AutoApprove)
	assert.True(t, cfg.Mock.ControlAPI)
	assert.Equal(t, "127.0.0.1:4444", cfg.Server.Listen)
	assert.Equal(t, []string{"https://a.example/mcp", "https://b.example/mcp"}, cfg.Resources.Allowed)
	assert.Equal(t, DefaultScopes, cfg.Scopes)
	assert.Equal(t, DefaultUsers(), cfg.Users)
	require.Len(t, cfg.Clients, 2)
	assert.Equal(t, "mcp-service-dev-secret", cfg.Clients[1].ClientSecret)
	assert.Equal(t, []string{"http://localhost:6274"}, cfg.Server.CORSOrigins, "MCP Inspector's default origin")

	// Every key of the shipped file is commented.
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	lines := strings.Split(string(raw), "\n")
	for i, line := range lines {
		if strings.Contains(line, " = ") && !strings.HasPrefix(line, "#") && i > 0 {
			prev := strings.TrimSpace(lines[i-1])
			isListItem := strings.HasPrefix(prev, "[[") || (strings.Contains(prev, " = ") && !strings.HasPrefix(prev, "#"))
			if !isListItem {
				assert.True(t, strings.HasPrefix(prev, "#"), "line %d %q has no comment above", i+1, line)
			}
		}
	}
}

func TestValidateNamesTheBadKey(t *testing.T) {
	cases := map[string]func(*Config){
		"server.listen":                         func(c *Config) { c.Server.Listen = "" },
		"server.issuer":                         func(c *Config) { c.Server.Issuer = "localhost:3002" },
		"server.tls_cert_file":                  func(c *Config) { c.Server.TLSCertFile = "cert.pem" },
		"server.max_body_bytes":                 func(c *Config) { c.Server.MaxBodyBytes = 10 },
		"keys.algorithm":                        func(c *Config) { c.Keys.Algorithm = "HS256" },
		"tokens.access_token_ttl":               func(c *Config) { c.Tokens.AccessTokenTTL = 0 },
		"tokens.code_ttl":                       func(c *Config) { c.Tokens.CodeTTL = -time.Second },
		"storage.driver":                        func(c *Config) { c.Storage.Driver = "postgres" },
		"storage.sqlite_path":                   func(c *Config) { c.Storage.Driver = "sqlite"; c.Storage.SQLitePath = "" },
		"registration.max_clients":              func(c *Config) { c.Registration.MaxClients = -1 },
		"registration.client_ttl":               func(c *Config) { c.Registration.ClientTTL = -time.Second },
		"resources.allowed[0]":                  func(c *Config) { c.Resources.Allowed = []string{"/relative"} },
		"scopes[1]":                             func(c *Config) { c.Scopes = []string{"ok", "bad scope"} },
		"users[1].subject":                      func(c *Config) { c.Users = append(c.Users[:1], User{Subject: "alice"}) },
		"mock.default_user":                     func(c *Config) { c.Mock.DefaultUser = "nobody" },
		"clients[0].redirect_uris":              func(c *Config) { c.Clients[0].RedirectURIs = []string{"http://evil.example/cb"} },
		"clients[1].client_secret":              func(c *Config) { c.Clients[1].ClientSecret = "" },
		"clients[0].grant_types":                func(c *Config) { c.Clients[0].GrantTypes = []string{"implicit"} },
		"clients[0].scopes":                     func(c *Config) { c.Clients[0].Scopes = []string{"admin"} },
		"clients[0].token_endpoint_auth_method": func(c *Config) { c.Clients[0].TokenEndpointAuthMethod = "private_key_jwt" },
		"clients[1].client_id":                  func(c *Config) { c.Clients[1].ClientID = c.Clients[0].ClientID },
	}
	for key, mutate := range cases {
		t.Run(key, func(t *testing.T) {
			cfg := DefaultConfig()
			mutate(&cfg)
			err := cfg.Validate()
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), key), "%q does not start with %q", err, key)
		})
	}
}

func TestConfigUnknownKeyIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	require.NoError(t, os.WriteFile(file, []byte("[tokens]\naccess_ttl = \"1h\"\n"), 0o600))
	var cfg Config
	err := config.Load(config.Options{File: file, Defaults: Defaults()}, &cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "access_ttl")
}

func TestNewRefusesInvalidConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Keys.Algorithm = "none"
	_, err := New(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "keys.algorithm")
}

// RFC 8414 §2: the issuer is https; plain http only on a loopback host,
// or anywhere when server.allow_insecure_http says so (with a warning).
func TestIssuerHTTPOnlyOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		ok     bool
	}{
		{"https://as.example", true},
		{"https://as.example:8443/tenant", true},
		{"http://localhost:3002", true},
		{"http://LOCALHOST:3002", true},
		{"http://127.0.0.1:3002", true},
		{"http://127.1.2.3", true},
		{"http://[::1]:3002", true},
		{"http://as.example:3002", false},
		{"http://10.0.0.5:3002", false},
		{"http://192.168.1.10", false},
		{"http://[2001:db8::1]:3002", false},
		{"http://localhost.example.com", false},
		{"http://0.0.0.0:3002", false},
	} {
		cfg := DefaultConfig()
		cfg.Server.Issuer = tc.issuer
		err := cfg.Validate()
		if tc.ok {
			assert.NoError(t, err, tc.issuer)
			continue
		}
		if assert.Error(t, err, tc.issuer) {
			assert.True(t, strings.HasPrefix(err.Error(), "server.issuer"), err.Error())
			assert.Contains(t, err.Error(), "server.allow_insecure_http")
		}
		cfg.Server.AllowInsecureHTTP = true
		assert.NoError(t, cfg.Validate(), tc.issuer)
	}
}

func TestInsecureIssuerIsLogged(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		warned bool
	}{{"http://as.example:3002", true}, {"http://127.0.0.1:3002", false}} {
		var logs strings.Builder
		cfg := DefaultConfig()
		cfg.Keys.PrivateKeyFile = sharedKeyFile
		cfg.Server.Issuer = tc.issuer
		cfg.Server.AllowInsecureHTTP = true
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		srv, err := New(cfg)
		require.NoError(t, err)
		require.NoError(t, srv.Close())
		assert.Equal(t, tc.warned, strings.Contains(logs.String(), `level=WARN msg="server.allow_insecure_http`), logs.String())
	}
}
