package mcpserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
)

// BenchmarkToolCall measures a tools/call over Streamable HTTP with and
// without authorization: the ratio the load tool reports for the binaries.
func BenchmarkToolCall(b *testing.B) {
	for _, mode := range []struct {
		name    string
		enabled bool
	}{{"auth", true}, {"noauth", false}} {
		b.Run(mode.name, func(b *testing.B) {
			env := newTestEnv(b, func(c *Config) { c.Auth.Enabled = mode.enabled; c.Audit.Sync = "never" })
			cs := env.connect(env.token("alice", allScopes))
			ctx := context.Background()
			args := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi"}}
			for b.Loop() {
				res, err := cs.CallTool(ctx, args)
				if err != nil || res.IsError {
					b.Fatalf("call: %v", err)
				}
			}
		})
	}
}

// BenchmarkVerifyJWT measures token verification with and without the
// verified-token cache.
func BenchmarkVerifyJWT(b *testing.B) {
	env := newTestEnv(b, nil)
	v := env.srv.verifier.(*jwtVerifier)
	tok := env.token("alice", "mcp:read")
	ctx := context.Background()
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		cache := v.cache
		v.cache = nil
		defer func() { v.cache = cache }()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMCPAccess measures what auth adds to one tools/call at the HTTP
// layer alone (bearer check on a cached token, per-tool scopes, handing the
// TokenInfo to the SDK), without the SDK's JSON-RPC handling whose noise
// hides it in BenchmarkToolCall.
func BenchmarkMCPAccess(b *testing.B) {
	env := newTestEnv(b, func(c *Config) { c.Audit.Sync = "never" })
	reached := 0
	h := env.srv.requireMCPAccess(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached++ }))
	summary, err := inspectJSONRPC([]byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`))
	require.NoError(b, err)
	st := &requestState{rpc: summary}
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	authorization := []string{"Bearer " + env.token("alice", allScopes)}
	r = r.WithContext(context.WithValue(r.Context(), stateKey, st))
	w := discardWriter{header: http.Header{}}
	for b.Loop() {
		st.identity, st.tokenInfo = nil, nil
		// The check puts its stand-in in the header it was given, as it
		// would in each new request's own.
		r.Header["Authorization"] = authorization
		h.ServeHTTP(w, r)
	}
	require.Equal(b, b.N, reached, "every request must pass the check")
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ header http.Header }

func (d discardWriter) Header() http.Header         { return d.header }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}
