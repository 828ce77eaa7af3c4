package mcpserver

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/config"
)

func TestDefaultsMatchDefaultConfig(t *testing.T) {
	var cfg Config
	require.NoError(t, config.Load(config.Options{EnvPrefix: "MCPTEST", Defaults: Defaults()}, &cfg))
	assert.Equal(t, DefaultConfig(), cfg)
	require.NoError(t, cfg.Validate())
}

func TestShippedConfigLoadsWithAuthEnabled(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "config", "mcp_server_config.toml")
	var cfg Config
	require.NoError(t, config.Load(config.Options{EnvPrefix: "MCPTEST", File: path, Required: true, Defaults: Defaults()}, &cfg))
	require.NoError(t, cfg.Validate())
	assert.True(t, cfg.Auth.Enabled, "the shipped config never disables auth")
	assert.Equal(t, "127.0.0.1:3003", cfg.Server.Listen)
	assert.Equal(t, []string{"mcp:read", "mcp:write"}, cfg.Tools["add_note"].Scopes)
	assert.True(t, cfg.Auth.RequireAtJWTTyp, "the shipped config checks typ at+jwt (RFC 9068 §4)")
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("MCPTEST_SERVER_LISTEN", "127.0.0.1:4000")
	t.Setenv("MCPTEST_AUTH_ISSUER", "http://127.0.0.1:4001")
	t.Setenv("MCPTEST_TOOLS_ECHO_SCOPES", "mcp:read,mcp:write")
	t.Setenv("MCPTEST_AUTH_REQUIRE_AT_JWT_TYP", "false")
	var cfg Config
	require.NoError(t, config.Load(config.Options{EnvPrefix: "MCPTEST", Defaults: Defaults()}, &cfg))
	assert.Equal(t, "127.0.0.1:4000", cfg.Server.Listen)
	assert.Equal(t, "http://127.0.0.1:4001", cfg.Auth.Issuer)
	assert.Equal(t, []string{"mcp:read", "mcp:write"}, cfg.Tools["echo"].Scopes)
	assert.False(t, cfg.Auth.RequireAtJWTTyp)
}

func TestValidateNamesBadKey(t *testing.T) {
	cases := map[string]func(*Config){
		"server.listen":                    func(c *Config) { c.Server.Listen = "nope" },
		"server.resource":                  func(c *Config) { c.Server.Resource = "/mcp" },
		"server.max_body_bytes":            func(c *Config) { c.Server.MaxBodyBytes = 0 },
		"server.allowed_origins":           func(c *Config) { c.Server.AllowedOrigins = []string{"https://a.example/path"} },
		"auth.mode":                        func(c *Config) { c.Auth.Mode = "magic" },
		"auth.issuer":                      func(c *Config) { c.Auth.Issuer = "localhost:3002" },
		"auth.algorithms":                  func(c *Config) { c.Auth.Algorithms = []string{"HS256"} },
		"auth.leeway":                      func(c *Config) { c.Auth.Leeway = time.Hour },
		"auth.unknown_kid_rate_limit":      func(c *Config) { c.Auth.UnknownKIDRateLimit = 0 },
		"auth.jwks_url":                    func(c *Config) { c.Auth.JWKSURL = "ftp://x" },
		"auth.introspection_client_secret": func(c *Config) { c.Auth.Mode = ModeIntrospection },
		"auth.required_scope":              func(c *Config) { c.Auth.RequiredScope = "a b" },
		"auth.enabled":                     func(c *Config) { c.Auth.Enabled = false; c.Server.Listen = "0.0.0.0:3003" },
		"tools.nosuch":                     func(c *Config) { c.Tools["nosuch"] = ToolConfig{} },
		"tools.echo.scopes":                func(c *Config) { c.Tools["echo"] = ToolConfig{Scopes: []string{"a b"}} },
		"audit.sync":                       func(c *Config) { c.Audit.Sync = "sometimes" },
		"audit.file":                       func(c *Config) { c.Audit.File = "" },
		"log.level":                        func(c *Config) { c.Log.Level = "loud" },
	}
	for key, mutate := range cases {
		cfg := DefaultConfig()
		mutate(&cfg)
		err := cfg.Validate()
		require.Error(t, err, key)
		assert.Contains(t, err.Error(), key)
	}
	cfg := DefaultConfig()
	cfg.Auth.Enabled = false
	cfg.Server.Listen = "127.0.0.1:0"
	assert.NoError(t, cfg.Validate(), "auth off on loopback is allowed")
}

// TestOfflineAccessIsNeverRequired: offline_access asks the authorization
// server for a refresh token and grants nothing here; a server requiring it
// would put it in its challenges, which MCP authorization (2026-07-28)
// forbids.
func TestOfflineAccessIsNeverRequired(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Auth.RequiredScope = "offline_access"
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "auth.required_scope")

	cfg = DefaultConfig()
	cfg.Tools["add_note"] = ToolConfig{Scopes: []string{"mcp:read", "offline_access"}}
	err = cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tools.add_note.scopes")
}

func TestNewRefusesAuthDisabledOffLoopback(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Auth.Enabled = false
	cfg.Server.Listen = ":3003"
	cfg.Audit.File = filepath.Join(t.TempDir(), "a.jsonl")
	_, err := New(cfg, Options{})
	require.Error(t, err)
	_, statErr := os.Stat(cfg.Audit.File)
	assert.True(t, os.IsNotExist(statErr), "nothing created for an invalid config")
}
