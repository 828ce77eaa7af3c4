package mcpserver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

const testResource = "http://localhost:3003/mcp"

// testClock is an injectable clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now().Truncate(time.Second)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testEnv struct {
	t      testing.TB
	iss    *testIssuer
	clock  *testClock
	srv    *Server
	http   *httptest.Server
	cfg    Config
	cancel context.CancelFunc
}

// newTestEnv builds a server against a fresh in-test issuer; mutate adjusts
// the config; the server is ready (JWKS loaded) unless the issuer is down.
func newTestEnv(t testing.TB, mutate func(*Config)) *testEnv {
	t.Helper()
	return newTestEnvWithIssuer(t, newTestIssuer(t), mutate, true)
}

func newTestEnvWithIssuer(t testing.TB, iss *testIssuer, mutate func(*Config), waitReady bool) *testEnv {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.Resource = testResource
	cfg.Auth.Issuer = iss.URL()
	cfg.Audit.File = filepath.Join(t.TempDir(), "audit.jsonl")
	if mutate != nil {
		mutate(&cfg)
	}
	clock := newTestClock()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(cfg, Options{Logger: logger, Clock: clock.Now, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	require.NoError(t, err)
	switch v := srv.verifier.(type) {
	case *jwtVerifier:
		v.retryMin, v.retryMax = 5*time.Millisecond, 20*time.Millisecond
	case *introspectionVerifier:
		v.retryMin, v.retryMax = 5*time.Millisecond, 20*time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv.Start(ctx)
	hs := httptest.NewServer(srv.Handler())
	env := &testEnv{t: t, iss: iss, clock: clock, srv: srv, http: hs, cfg: cfg, cancel: cancel}
	t.Cleanup(func() {
		hs.Close()
		cancel()
		_ = srv.Close()
	})
	if waitReady && cfg.Auth.Enabled {
		require.Eventually(t, func() bool { return srv.Ready() == nil }, 5*time.Second, 5*time.Millisecond)
	}
	return env
}

func (e *testEnv) mcpURL() string { return e.http.URL + "/mcp" }

// token mints a valid token for this server's resource.
func (e *testEnv) token(subject, scope string) string {
	return e.iss.token(subject, testResource, scope, e.clock.Now())
}

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// post sends a raw JSON-RPC POST to /mcp with optional headers.
func (e *testEnv) post(body string, headers map[string]string) *http.Response {
	e.t.Helper()
	return e.do(http.MethodPost, e.mcpURL(), body, headers)
}

func (e *testEnv) do(method, url, body string, headers map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := e.http.Client().Do(req)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = res.Body.Close() })
	return res
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	require.NoError(t, err)
	return string(b)
}

// bearerTransport adds the Authorization header, as an MCP client does.
type bearerTransport struct {
	token string
	base  http.RoundTripper
}

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// connect opens an SDK client session with token.
func (e *testEnv) connect(token string) *mcp.ClientSession {
	e.t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, nil)
	transport := &mcp.StreamableClientTransport{
		Endpoint:             e.mcpURL(),
		HTTPClient:           &http.Client{Transport: &bearerTransport{token: token, base: e.http.Client().Transport}, Timeout: 10 * time.Second},
		MaxRetries:           -1,
		DisableStandaloneSSE: true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, transport, nil)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
