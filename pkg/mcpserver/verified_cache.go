package mcpserver

// This file is a small bounded cache of verified tokens, so that a client
// sending the same token on every request pays for the signature check once.
// Entries are keyed by a SHA-256 (the token itself is never stored), expire
// after a short TTL and are never trusted past the token's exp.
//
// For JWTs (the JWT verifier's cache) the key is the SHA-256 of the
// signature alone, and the entry keeps the signed part (header and claims)
// to compare with: a hit still means the token presented is, byte for byte,
// the one verified, since both parts are equal. The signed part is no
// credential without the signature (it is the claims the Identity already
// holds), and the hash covers about 350 bytes of an RS256 token (90 of an
// ES256 one) instead of about 900: hashing the token was most of what the
// auth check cost per call (docs/PERFORMANCE.md, "Auth overhead"). Opaque
// tokens (the introspection verifier's caches) are hashed whole and no part
// of them is kept, since any part of them may be secret.

import (
	"crypto/sha256"
	"strings"
	"sync"
	"time"
)

const (
	verifiedCacheSize = 4096
	verifiedCacheTTL  = 30 * time.Second
)

type verifiedEntry struct {
	id      *Identity
	expires time.Time
	signed  string // a JWT's header and claims; "" for opaque tokens
}

// verifiedCache maps the key of a token to the verified Identity.
type verifiedCache struct {
	mu      sync.Mutex
	max     int
	ttl     time.Duration
	clock   func() time.Time
	jws     bool // tokens are JWTs: hash the signature, compare the rest
	entries map[[sha256.Size]byte]verifiedEntry
	buffers sync.Pool // of *[]byte, for key
}

// newVerifiedCache caches opaque tokens: each is hashed whole.
func newVerifiedCache(max int, ttl time.Duration, clock func() time.Time) *verifiedCache {
	return &verifiedCache{max: max, ttl: ttl, clock: clock, entries: map[[sha256.Size]byte]verifiedEntry{}}
}

// newJWTCache caches JWTs only ever put after their signature verified.
func newJWTCache(max int, ttl time.Duration, clock func() time.Time) *verifiedCache {
	c := newVerifiedCache(max, ttl, clock)
	c.jws = true
	return c
}

// split returns the part of token kept in the entry and the part hashed
// into the key: for a JWT, what precedes its second '.' (header.claims) and
// what follows it (the signature); for anything else, "" and all of it.
// Any split works for equality (both parts equal means the tokens are); this
// one finds the dots from the front with IndexByte, which is vectorized,
// where searching back from the end over the signature is byte by byte.
func (c *verifiedCache) split(token string) (signed, hashed string) {
	if c.jws {
		if i := strings.IndexByte(token, '.'); i >= 0 {
			if j := strings.IndexByte(token[i+1:], '.'); j >= 0 {
				return token[:i+1+j], token[i+2+j:]
			}
		}
	}
	return "", token
}

func (c *verifiedCache) get(token string) (*Identity, bool) {
	if c == nil || c.max <= 0 {
		return nil, false
	}
	signed, hashed := c.split(token)
	key := c.key(hashed)
	now := c.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || e.signed != signed {
		// Same signature, other claims: not the token verified (only one
		// holding that token's signature could send it). A miss, so it is
		// verified in full, and fails.
		return nil, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, key)
		return nil, false
	}
	return e.id, true
}

// put remembers id until the earlier of the TTL and the token's exp.
func (c *verifiedCache) put(token string, id *Identity) {
	if c == nil || c.max <= 0 {
		return
	}
	now := c.clock()
	expires := now.Add(c.ttl)
	if id.ExpiresAt.Before(expires) {
		expires = id.ExpiresAt
	}
	if !now.Before(expires) {
		return
	}
	signed, hashed := c.split(token)
	key := c.key(hashed)
	// A copy: a substring would keep the whole header value alive, and
	// with it the signature.
	signed = strings.Clone(signed)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[key] = verifiedEntry{id: id, expires: expires, signed: signed}
}

// evict drops expired entries, and if none were, an arbitrary one, so the
// map never grows past max.
func (c *verifiedCache) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.max {
			return
		}
		delete(c.entries, k)
	}
}

// maxPooledKeyBuffer keeps one huge token from pinning a large buffer.
const maxPooledKeyBuffer = 16 << 10

// key is the SHA-256 of s (the hashed part of a token). sha256.Sum256
// takes a []byte, and converting a string of hundreds of bytes to one
// allocates on every request; a pooled buffer does not. The copy is wiped
// before the buffer goes back to the pool, so no token stays in memory in
// clear once its request is done with it.
func (c *verifiedCache) key(s string) [sha256.Size]byte {
	bp, _ := c.buffers.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := append((*bp)[:0], s...)
	key := sha256.Sum256(b)
	clear(b)
	if cap(b) <= maxPooledKeyBuffer {
		*bp = b[:0]
		c.buffers.Put(bp)
	}
	return key
}
