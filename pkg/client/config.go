package client

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Code-fetch modes: how the client obtains the authorization code.
const (
	// ModeLoopback listens on the redirect URI and opens the browser (RFC 8252 §7.3).
	ModeLoopback = "loopback"
	// ModeHeadless requests the authorization URL itself and reads the code
	// from the redirect: for an authorization server that approves at once
	// (the mock's auto-approve, CI, the conformance suite).
	ModeHeadless = "headless"
	// ModePaste asks the user to paste the URL the browser was redirected to.
	ModePaste = "paste"
)

// Config is the client's configuration (prefix CLIENT, file
// config/client_config.toml). The keys are listed in docs/INTERFACES.md.
type Config struct {
	MCP struct {
		// ServerURL is the MCP endpoint, also the resource (RFC 8707) asked for.
		ServerURL string `mapstructure:"server_url"`
	} `mapstructure:"mcp"`
	OAuth struct {
		// ClientID is a preregistered client id; empty selects dynamic registration.
		ClientID string `mapstructure:"client_id"`
		// ClientSecret is the preregistered client's secret, empty for a public client.
		ClientSecret string `mapstructure:"client_secret"`
		// ClientIDMetadataURL is a client ID metadata document URL (https).
		ClientIDMetadataURL string `mapstructure:"client_id_metadata_url"`
		// RedirectURI is the loopback redirect URI.
		RedirectURI string `mapstructure:"redirect_uri"`
		// Scopes overrides the scopes discovered from the challenge or metadata.
		Scopes []string `mapstructure:"scopes"`
		// Mode is loopback, headless or paste.
		Mode string `mapstructure:"mode"`
		// LoginHint is sent to /authorize as login_hint.
		LoginHint string `mapstructure:"login_hint"`
		// LoginTimeout bounds the wait for the loopback redirect.
		LoginTimeout time.Duration `mapstructure:"login_timeout"`
	} `mapstructure:"oauth"`
	Cache struct {
		// TokenFile is the JSON token cache.
		TokenFile string `mapstructure:"token_file"`
		// Disabled keeps tokens in memory only.
		Disabled bool `mapstructure:"disabled"`
	} `mapstructure:"cache"`
	HTTP struct {
		// Timeout bounds every HTTP request.
		Timeout time.Duration `mapstructure:"timeout"`
		// MaxRetries bounds the retries of idempotent requests, and of
		// token requests answered with 5xx or 429 (see RetryTransport).
		MaxRetries int `mapstructure:"max_retries"`
	} `mapstructure:"http"`
	Log struct {
		// Level is the slog level (debug, info, warn, error).
		Level string `mapstructure:"level"`
		// Format is text or json.
		Format string `mapstructure:"format"`
	} `mapstructure:"log"`
}

// DefaultConfigFile is read when --config is not given; a missing file is fine.
const DefaultConfigFile = "config/client_config.toml"

// Defaults are the built-in values of every key, so each can be overridden
// from the environment (viper only consults the environment for known keys).
func Defaults() map[string]any {
	return map[string]any{
		"mcp.server_url":               "http://localhost:3003/mcp",
		"oauth.client_id":              "",
		"oauth.client_secret":          "",
		"oauth.client_id_metadata_url": "",
		"oauth.redirect_uri":           "http://127.0.0.1:3001/callback",
		"oauth.scopes":                 []string{},
		"oauth.mode":                   ModeLoopback,
		"oauth.login_hint":             "",
		"oauth.login_timeout":          "5m",
		"cache.token_file":             "",
		"cache.disabled":               false,
		"http.timeout":                 "30s",
		"http.max_retries":             3,
		"log.level":                    "warn",
		"log.format":                   "text",
	}
}

// DefaultTokenFile is <user cache dir>/http-oauth2-client/tokens.json.
func DefaultTokenFile() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find user cache dir: %w", err)
	}
	return filepath.Join(dir, "http-oauth2-client", "tokens.json"), nil
}

// Validate checks the values a run depends on and names the bad key.
func (c *Config) Validate() error {
	if err := checkHTTPURL(c.MCP.ServerURL); err != nil {
		return fmt.Errorf("mcp.server_url: %w", err)
	}
	switch c.OAuth.Mode {
	case ModeLoopback, ModeHeadless, ModePaste:
	default:
		return fmt.Errorf("oauth.mode: %q is not loopback, headless or paste", c.OAuth.Mode)
	}
	if err := checkLoopbackRedirect(c.OAuth.RedirectURI); err != nil {
		return fmt.Errorf("oauth.redirect_uri: %w", err)
	}
	if c.OAuth.ClientIDMetadataURL != "" {
		u, err := url.Parse(c.OAuth.ClientIDMetadataURL)
		if err != nil || u.Scheme != "https" || u.Path == "" || u.Path == "/" {
			return fmt.Errorf("oauth.client_id_metadata_url: must be an https URL with a path")
		}
	}
	if c.OAuth.LoginTimeout <= 0 {
		return fmt.Errorf("oauth.login_timeout: must be positive")
	}
	if c.HTTP.Timeout <= 0 {
		return fmt.Errorf("http.timeout: must be positive")
	}
	if c.HTTP.MaxRetries < 0 || c.HTTP.MaxRetries > 10 {
		return fmt.Errorf("http.max_retries: must be between 0 and 10")
	}
	return nil
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q has a fragment", raw)
	}
	return nil
}

// checkLoopbackRedirect enforces the MCP rule that redirect URIs are
// loopback http or https: a native client must not send codes elsewhere.
func checkLoopbackRedirect(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme == "https" && u.Host != "" {
		return nil
	}
	if u.Scheme != "http" || !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%q must be https or loopback http", raw)
	}
	return nil
}

func isLoopbackHost(h string) bool {
	return h == "127.0.0.1" || h == "::1" || h == "localhost"
}
