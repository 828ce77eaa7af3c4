package mcpserver

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVerifiedCacheKey: the key is the token's SHA-256 whatever its length
// (pooled buffers are reused across lengths, oversized ones dropped), and a
// hit on a kilobyte token allocates nothing.
func TestVerifiedCacheKey(t *testing.T) {
	clock := newTestClock()
	c := newVerifiedCache(8, time.Minute, clock.Now)
	for _, tok := range []string{"", "short", strings.Repeat("a", 900), "b", strings.Repeat("c", maxPooledKeyBuffer+1), "d"} {
		assert.Equal(t, sha256.Sum256([]byte(tok)), c.key(tok), "key of a %d-byte token", len(tok))
	}
	tok := strings.Repeat("t", 900)
	c.put(tok, &Identity{Subject: "alice", ExpiresAt: clock.Now().Add(time.Hour)})
	id, ok := c.get(tok)
	require.True(t, ok)
	assert.Equal(t, "alice", id.Subject)
	allocs := testing.AllocsPerRun(100, func() { _, _ = c.get(tok) })
	assert.Zero(t, allocs, "a cache hit allocates nothing")
}
