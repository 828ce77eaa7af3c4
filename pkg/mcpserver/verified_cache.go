package mcpserver

// This file is a small bounded cache of verified tokens, so that a client
// sending the same token on every request pays for the signature check once.
// Entries are keyed by the SHA-256 of the token (the token itself is never
// stored), expire after a short TTL and are never trusted past the token's
// exp.

import (
	"crypto/sha256"
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
}

// verifiedCache maps sha256(token) to the verified Identity.
type verifiedCache struct {
	mu      sync.Mutex
	max     int
	ttl     time.Duration
	clock   func() time.Time
	entries map[[sha256.Size]byte]verifiedEntry
	buffers sync.Pool // of *[]byte, for key
}

func newVerifiedCache(max int, ttl time.Duration, clock func() time.Time) *verifiedCache {
	return &verifiedCache{max: max, ttl: ttl, clock: clock, entries: map[[sha256.Size]byte]verifiedEntry{}}
}

func (c *verifiedCache) get(token string) (*Identity, bool) {
	if c == nil || c.max <= 0 {
		return nil, false
	}
	key := c.key(token)
	now := c.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
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
	key := c.key(token)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[key] = verifiedEntry{id: id, expires: expires}
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

// key is the cache key of token: its SHA-256. sha256.Sum256 takes a
// []byte, and converting a string of about a kilobyte to one allocates on
// every request; a pooled buffer does not. The copy of the token is wiped
// before the buffer goes back to the pool, so no token stays in memory in
// clear once its request is done with it.
func (c *verifiedCache) key(token string) [sha256.Size]byte {
	bp, _ := c.buffers.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := append((*bp)[:0], token...)
	key := sha256.Sum256(b)
	clear(b)
	if cap(b) <= maxPooledKeyBuffer {
		*bp = b[:0]
		c.buffers.Put(bp)
	}
	return key
}
