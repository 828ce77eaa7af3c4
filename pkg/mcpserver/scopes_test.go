package mcpserver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAddScopes: the shortcut gives the union, in unionScopes' order, and
// leaves its arguments alone.
func TestAddScopes(t *testing.T) {
	base := []string{ScopeRead}
	write := []string{ScopeRead, ScopeWrite}
	audit := []string{ScopeRead, ScopeAudit}
	for _, tc := range []struct {
		name      string
		need, add []string
		want      []string
	}{
		{"base then tool", base, write, write},
		{"tool already covered", write, base, write},
		{"same tool twice", write, write, write},
		{"two tools", write, audit, []string{ScopeRead, ScopeWrite, ScopeAudit}},
		{"base not in tool", []string{"x"}, write, []string{"x", ScopeRead, ScopeWrite}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needBefore, addBefore := append([]string(nil), tc.need...), append([]string(nil), tc.add...)
			got := addScopes(tc.need, tc.add)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, unionScopes(tc.need, tc.add), got)
			assert.Equal(t, needBefore, tc.need)
			assert.Equal(t, addBefore, tc.add)
		})
	}
}

// TestTokenInfoBuiltOnce: a verified (and cached) token gives every request
// the same TokenInfo, which names the token's subject, scopes and Identity.
func TestTokenInfoBuiltOnce(t *testing.T) {
	env := newTestEnv(t, nil)
	tok := env.token("alice", "mcp:read mcp:write")
	first, err := env.srv.verifier.Verify(context.Background(), tok)
	require.NoError(t, err)
	again, err := env.srv.verifier.Verify(context.Background(), tok)
	require.NoError(t, err)
	info := tokenInfoFor(first)
	require.Same(t, info, tokenInfoFor(again), "one TokenInfo per verified token")
	assert.Equal(t, "alice", info.UserID)
	assert.Equal(t, []string{"mcp:read", "mcp:write"}, info.Scopes)
	assert.Equal(t, first.ExpiresAt, info.Expiration)
	assert.Same(t, first, info.Extra[identityExtraKey])

	other := &Identity{Subject: "bob"}
	assert.Equal(t, "bob", tokenInfoFor(other).UserID, "an Identity built elsewhere still converts")
}
