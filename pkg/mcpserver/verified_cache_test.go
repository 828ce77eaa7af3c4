package mcpserver

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
	"unsafe"

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

// TestJWTCacheKeysTheSignatureAndComparesTheRest: the JWT cache hashes the
// signature and keeps the signed part, so a hit needs both to be equal: the
// same signature under other claims, or other signatures under the same
// claims, miss. The entry keeps its own copy of the signed part, never the
// signature, and a hit allocates nothing.
func TestJWTCacheKeysTheSignatureAndComparesTheRest(t *testing.T) {
	clock := newTestClock()
	c := newJWTCache(8, time.Minute, clock.Now)
	tok := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9." + strings.Repeat("S", 342)
	c.put(tok, &Identity{Subject: "alice", ExpiresAt: clock.Now().Add(time.Hour)})

	id, ok := c.get(tok)
	require.True(t, ok)
	assert.Equal(t, "alice", id.Subject)
	e, ok := c.entries[sha256.Sum256([]byte(strings.Repeat("S", 342)))]
	require.True(t, ok, "keyed by the signature's SHA-256")
	assert.Equal(t, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9", e.signed)
	assert.NotContains(t, e.signed, "SSSS", "the signature is not kept")
	assert.NotSame(t, unsafe.StringData(tok), unsafe.StringData(e.signed), "a copy, not a view of the token")

	for name, other := range map[string]string{
		"same signature, other claims": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0." + strings.Repeat("S", 342),
		"same signature, no claims":    strings.Repeat("S", 342),
		"same claims, other signature": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9." + strings.Repeat("T", 342),
		"signature with a dot":         "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9." + strings.Repeat("S", 341) + ".",
		"one dot less":                 "eyJhbGciOiJSUzI1NiJ9eyJzdWIiOiJhbGljZSJ9." + strings.Repeat("S", 342),
		"dots moved":                   "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9" + strings.Repeat("S", 171) + "." + strings.Repeat("S", 171),
	} {
		_, ok := c.get(other)
		assert.False(t, ok, name)
	}
	_, ok = c.get(tok)
	assert.True(t, ok, "misses leave the entry alone")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = c.get(tok) }), "a hit allocates nothing")
}

// TestOpaqueCacheKeepsNoPartOfTheToken: the introspection caches hash
// opaque tokens whole (any part of them may be secret) and keep none of it.
func TestOpaqueCacheKeepsNoPartOfTheToken(t *testing.T) {
	clock := newTestClock()
	c := newVerifiedCache(8, time.Minute, clock.Now)
	tok := "secret-part.v1.tail"
	c.put(tok, &Identity{Subject: "alice", ExpiresAt: clock.Now().Add(time.Hour)})
	e, ok := c.entries[sha256.Sum256([]byte(tok))]
	require.True(t, ok, "keyed by the whole token's SHA-256")
	assert.Empty(t, e.signed)
	_, ok = c.get("other-part.v1.tail")
	assert.False(t, ok)
}

// TestCachedSignatureUnderForgedClaimsIsRefused drives the server: once
// alice's token is verified (and cached), the same signature under claims
// naming bob is refused, and alice's token still works.
func TestCachedSignatureUnderForgedClaimsIsRefused(t *testing.T) {
	env := newTestEnv(t, nil)
	tok := env.token("alice", "mcp:read")
	res := env.post(initializeBody, bearer(tok))
	require.Equal(t, http.StatusOK, res.StatusCode)

	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	forgedClaims := strings.Replace(string(claims), `"sub":"alice"`, `"sub":"bob"`, 1)
	require.NotEqual(t, string(claims), forgedClaims)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forgedClaims)) + "." + parts[2]

	res = env.post(initializeBody, bearer(forged))
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, res.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
	res = env.post(initializeBody, bearer(tok))
	assert.Equal(t, http.StatusOK, res.StatusCode)
}
