package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/config"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/mcpserver"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/metrics"
)

// startAuthServer serves the project's authorization server (the shipped
// configuration, auto-approving, with a fresh ES256 key) on a loopback
// httptest server.
func startAuthServer(t *testing.T) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	var cfg authserver.Config
	require.NoError(t, config.Load(config.Options{
		File: "../../config/auth_server_config.toml", Required: true, Defaults: authserver.Defaults(),
	}, &cfg))
	cfg.Server.Issuer = "http://" + ts.Listener.Addr().String()
	cfg.Keys.Algorithm = "ES256"
	cfg.Keys.PrivateKeyFile = filepath.Join(t.TempDir(), "key.pem")
	cfg.Storage.Driver = "memory"
	cfg.Mock.AutoApprove = true
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Metrics = metrics.New(metrics.NamespaceAuthServer, metrics.AuthServerSeries)
	srv, err := authserver.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	ts.Config.Handler = srv
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// startMCPServer serves the project's MCP server (the shipped
// configuration) trusting issuer, with auth on or off.
func startMCPServer(t *testing.T, issuer string, authEnabled bool) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	var cfg mcpserver.Config
	require.NoError(t, config.Load(config.Options{
		File: "../../config/mcp_server_config.toml", Required: true, Defaults: mcpserver.Defaults(),
	}, &cfg))
	cfg.Server.Listen = ts.Listener.Addr().String()
	cfg.Server.Resource = "http://" + ts.Listener.Addr().String() + "/mcp"
	cfg.Auth.Enabled = authEnabled
	cfg.Auth.Issuer = issuer
	cfg.Audit.File = filepath.Join(t.TempDir(), "audit.jsonl")
	cfg.Audit.Sync = "never"
	srv, err := mcpserver.New(cfg, mcpserver.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	srv.Start(ctx)
	t.Cleanup(func() { cancel(); _ = srv.Close() })
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// TestScenariosAgainstTheProjectServers runs every duration-bound scenario
// against the project's own servers, in process: a short, low-concurrency
// version of what make bench does with the binaries.
func TestScenariosAgainstTheProjectServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts both servers")
	}
	as := startAuthServer(t)
	mcpAuth := startMCPServer(t, as.URL, true)
	mcpNoauth := startMCPServer(t, as.URL, false)
	// The MCP server is ready once it has the authorization server's JWKS.
	_, err := waitReady(context.Background(), mcpAuth.Client(), mcpAuth.URL+"/readyz", time.Now(), 5*time.Second)
	require.NoError(t, err)

	var stdout, stderr bytes.Buffer
	err = realMain(context.Background(), []string{
		"-as", as.URL, "-mcp", mcpAuth.URL + "/mcp", "-mcp-noauth", mcpNoauth.URL + "/mcp",
		"-scenario", "mcp-echo,mcp-echo-noauth,mcp-echo-noauth-bearer,token-cc,refresh,invalid-token",
		"-duration", "1s", "-warmup", "0", "-concurrency", "3", "-json",
	}, &stdout, &stderr)
	require.NoError(t, err, "stderr: %s\nstdout: %s", stderr.String(), stdout.String())

	var report runReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &report))
	require.Len(t, report.Results, 6)
	for _, res := range report.Results {
		assert.Empty(t, res.Error, res.Scenario)
		assert.Positive(t, res.Requests, res.Scenario)
		assert.Zero(t, res.Errors, "%s: %v", res.Scenario, res.ErrorKinds)
		if usesAuthMCP[res.Scenario] {
			assert.NotNil(t, res.JWKSFetches, "%s: the MCP server exports %s", res.Scenario, "mcp_jwks_refreshes_total")
		}
	}
	resp, err := http.Get(as.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	assert.Contains(t, string(body), `oauth2_tokens_issued_total{grant_type="refresh_token"}`)
}
