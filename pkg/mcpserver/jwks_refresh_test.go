package mcpserver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/metrics"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unknownKIDToken signs a token with the issuer's current key under a kid
// no JWKS holds.
func (e *testEnv) unknownKIDToken() string {
	k := *e.iss.current()
	k.kid = uuid.NewString()
	return e.iss.sign(&k, e.iss.claims("mallory", testResource, "mcp:read", e.clock.Now()))
}

// jwksFetches reads both fetch counters: the issuer's (requests received)
// and the server's mcp_jwks_refreshes_total{outcome="ok"}.
func (e *testEnv) jwksFetches(t *testing.T) (hits int64, ok float64) {
	return e.iss.jwksHits.Load(), counterValue(t, e.srv.metrics.JWKSRefreshes.WithLabelValues(metrics.OutcomeOK))
}

// waitRefreshed waits (bounded) for the unknown-kid refresh in flight, if any.
func waitRefreshed(t *testing.T, v *jwtVerifier) {
	t.Helper()
	done := v.refresher.Load().running()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("unknown-kid refresh did not finish within 5s")
	}
}

// TestUnknownKIDRefreshOutlivesShortRequestContexts reproduces the failure
// of jwkset's own unknown-kid refresh: it fetched under the triggering
// request's deadline, so with a JWKS answering in 50 ms and requests whose
// contexts last 10 ms, the one allowed fetch failed with "context deadline
// exceeded" and a key rotated meanwhile stayed unknown for a whole
// rate-limit interval. The refresh now runs under the server's context: the
// flood still costs one fetch, every request is refused quickly, and the
// rotated key is accepted on the first request after the fetch completes.
func TestUnknownKIDRefreshOutlivesShortRequestContexts(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Auth.UnknownKIDRateLimit = time.Hour })
	v := env.srv.verifier.(*jwtVerifier)
	env.iss.jwksDelay.Store(int64(50 * time.Millisecond))
	hits0, ok0 := env.jwksFetches(t)

	rotated := env.iss.sign(env.iss.addRSAKey(), env.iss.claims("alice", testResource, "mcp:read", env.clock.Now()))
	flood := make([]string, 20)
	for i := range flood {
		flood[i] = env.unknownKIDToken()
	}
	flood[len(flood)/2] = rotated // the real rotation arrives amid the flood
	var wg sync.WaitGroup
	for _, tok := range flood {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := v.Verify(ctx, tok)
			assert.ErrorIs(t, err, ErrInvalidToken)
			assert.Less(t, time.Since(start), 500*time.Millisecond, "a refused token waits at most its context")
		})
	}
	wg.Wait()

	waitRefreshed(t, v)
	id, err := v.Verify(ctx10s(t), rotated)
	require.NoError(t, err, "the rotated key is known once the refresh completed")
	assert.Equal(t, "alice", id.Subject)

	hits, ok := env.jwksFetches(t)
	assert.Equal(t, int64(1), hits-hits0, "21 unknown-kid requests cost one JWKS fetch")
	assert.Equal(t, 1.0, ok-ok0, "and that fetch succeeded")
}

// TestUnknownKIDWaitIsBounded: a request with a long context waits for the
// refresh in flight at most the refresher's bound; with no refresh allowed
// it is refused at once; the next refresh is allowed one rate-limit interval
// later (on the injected clock).
func TestUnknownKIDWaitIsBounded(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Auth.UnknownKIDRateLimit = time.Minute })
	v := env.srv.verifier.(*jwtVerifier)
	r := v.refresher.Load()
	r.wait = 50 * time.Millisecond
	env.iss.jwksDelay.Store(int64(300 * time.Millisecond))
	hits0, _ := env.jwksFetches(t)

	rotated := env.iss.sign(env.iss.addRSAKey(), env.iss.claims("alice", testResource, "mcp:read", env.clock.Now()))
	start := time.Now()
	_, err := v.Verify(ctx10s(t), rotated)
	require.ErrorIs(t, err, ErrInvalidToken, "the fetch outlasts the wait")
	assert.Less(t, time.Since(start), 250*time.Millisecond, "waited only about r.wait")
	require.NotNil(t, r.running(), "the refresh goes on in the background")

	start = time.Now()
	_, err = v.Verify(ctx10s(t), env.unknownKIDToken())
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.Less(t, time.Since(start), 250*time.Millisecond, "joins the refresh in flight, bounded alike")

	waitRefreshed(t, v)
	_, err = v.Verify(ctx10s(t), rotated)
	require.NoError(t, err)

	r.wait = 5 * time.Second // would show if this request waited at all
	start = time.Now()
	_, err = v.Verify(ctx10s(t), env.unknownKIDToken())
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.Less(t, time.Since(start), time.Second, "no refresh allowed: refused at once")
	hits, _ := env.jwksFetches(t)
	assert.Equal(t, int64(1), hits-hits0)

	env.clock.Advance(time.Minute)
	env.iss.jwksDelay.Store(0)
	_, err = v.Verify(ctx10s(t), env.unknownKIDToken())
	require.ErrorIs(t, err, ErrInvalidToken)
	waitRefreshed(t, v)
	hits, _ = env.jwksFetches(t)
	assert.Equal(t, int64(2), hits-hits0, "one more refresh per rate-limit interval")
}

// TestUnknownKIDRefreshStopsWithServer: once the server's context ends, an
// unknown kid starts no fetch.
func TestUnknownKIDRefreshStopsWithServer(t *testing.T) {
	env := newTestEnv(t, nil)
	v := env.srv.verifier.(*jwtVerifier)
	hits0, _ := env.jwksFetches(t)
	env.cancel()
	_, err := v.Verify(ctx10s(t), env.unknownKIDToken())
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.Nil(t, v.refresher.Load().running())
	hits, _ := env.jwksFetches(t)
	assert.Equal(t, hits0, hits)
}
