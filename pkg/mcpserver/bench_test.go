package mcpserver

import (
	"context"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
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
