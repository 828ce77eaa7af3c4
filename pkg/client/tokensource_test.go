package client

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// loggedIn returns a token source fresh from a real login at the fake AS.
func loggedIn(t *testing.T, env *testEnv) (*Handler, *RefreshingTokenSource) {
	h := env.handler(t, nil)
	require.NoError(t, h.Login(context.Background()))
	return h, h.Current()
}

func TestRefreshBeforeExpiryIsSharedByConcurrentCallers(t *testing.T) {
	env := newEnv(t)
	env.as.tokenDelay = 50 * time.Millisecond
	_, ts := loggedIn(t, env)
	first := ts.Current()

	// Move the injected clock to just inside the refresh window.
	var now atomic.Pointer[time.Time]
	at := first.Expiry.Add(-DefaultRefreshSkew / 2)
	now.Store(&at)
	ts.now = func() time.Time { return *now.Load() }

	const callers = 20
	var wg sync.WaitGroup
	tokens := make([]*oauth2.Token, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := ts.Token()
			assert.NoError(t, err)
			tokens[i] = tok
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, env.as.refreshes.Load(), "exactly one refresh request")
	for _, tok := range tokens {
		require.NotNil(t, tok)
		assert.Equal(t, tokens[0].AccessToken, tok.AccessToken)
		assert.NotEqual(t, first.AccessToken, tok.AccessToken)
	}
	// The rotated token was persisted.
	e := env.cache.FindByResource(env.mcp.URL())
	assert.Equal(t, tokens[0].RefreshToken, e.Token.RefreshToken)
	assert.ElementsMatch(t, []string{"mcp:read", "offline_access"}, strings.Fields(e.Token.Scope), "scope kept across refresh")

	// Not due yet (the clock is back before the new token's window): no refresh.
	back := first.Expiry.Add(-time.Hour / 2)
	now.Store(&back)
	_, err := ts.Token()
	require.NoError(t, err)
	assert.EqualValues(t, 1, env.as.refreshes.Load())
}

func TestRefreshInvalidGrantAsksForAuthorization(t *testing.T) {
	env := newEnv(t)
	_, ts := loggedIn(t, env)
	env.as.mu.Lock()
	env.as.refresh = map[string]fakeToken{}
	env.as.mu.Unlock()
	_, err := ts.ForceRefresh(context.Background(), "")
	require.Error(t, err)
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "invalid_grant", re.ErrorCode, "the SDK transport re-authorizes on invalid_grant")
	assert.Empty(t, ts.Current().RefreshToken, "dead refresh token dropped")
	// No retry storm: the next call does not hit the token endpoint again.
	_, err = ts.ForceRefresh(context.Background(), "")
	require.Error(t, err)
	assert.EqualValues(t, 1, env.as.refreshes.Load())
}

func TestRefreshInvalidClientMarksClient(t *testing.T) {
	env := newEnv(t)
	h, ts := loggedIn(t, env)
	env.as.forgetClients()
	_, err := ts.ForceRefresh(context.Background(), "")
	require.Error(t, err)
	assert.True(t, ts.ClientRejected())
	// The next authorization registers a new client.
	require.NoError(t, h.Login(context.Background()))
	assert.EqualValues(t, 2, env.as.registrations.Load())
}

func TestTokenWithoutRefreshTokenExpired(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := NewRefreshingTokenSource(&oauth2.Config{}, http.DefaultClient,
		&oauth2.Token{AccessToken: "a", Expiry: now.Add(time.Second)}, TokenSourceOptions{Now: func() time.Time { return now }})
	_, err := ts.Token()
	assert.True(t, isInvalidGrant(err))
	assert.Equal(t, 0, ts.Refreshes())
}

func TestShortLivedTokenIsNotRefreshedOnEveryCall(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := NewRefreshingTokenSource(&oauth2.Config{}, http.DefaultClient,
		&oauth2.Token{AccessToken: "a", RefreshToken: "r", Expiry: now.Add(2 * time.Second)},
		TokenSourceOptions{Now: func() time.Time { return now }, ObtainedAt: now})
	tok, err := ts.Token()
	require.NoError(t, err)
	assert.Equal(t, "a", tok.AccessToken)
	assert.Equal(t, 0, ts.Refreshes(), "a 2s token is used for its first half, not refreshed at once")
}

// retryingClient is an OAuth HTTP client with the project's retrying
// transport and no real waits.
func retryingClient(maxRetries int) *http.Client {
	rt := NewRetryTransport(nil, maxRetries)
	rt.Sleep = func(context.Context, time.Duration) error { return nil }
	return &http.Client{Timeout: 10 * time.Second, Transport: rt}
}

func TestTokenEndpoint500OnceIsRetried(t *testing.T) {
	env := newEnv(t)
	h := env.handler(t, func(c *HandlerConfig) { c.HTTPClient = retryingClient(2) })

	// The code exchange: one 500, then the same exchange succeeds.
	env.as.tokenFailures.Store(1)
	require.NoError(t, h.Login(context.Background()))
	assert.EqualValues(t, 2, env.as.tokenRequests.Load())
	assert.EqualValues(t, 1, env.as.codeExchanges.Load(), "the 500 was answered before processing")
	ts := h.Current()
	first := ts.Current()

	// A refresh answered with 500 issued nothing (RFC 6749 §5.2): the same
	// refresh token is sent again and works.
	env.as.tokenFailures.Store(1)
	tok, err := ts.ForceRefresh(context.Background(), "")
	require.NoError(t, err)
	assert.NotEqual(t, first.AccessToken, tok.AccessToken)
	assert.EqualValues(t, 4, env.as.tokenRequests.Load())
	assert.EqualValues(t, 1, env.as.refreshes.Load())
	assert.Equal(t, 1, ts.Refreshes(), "one refresh, sent twice by the transport")

	// Always 500: bounded attempts, then a clear error.
	env.as.tokenFailures.Store(100)
	_, err = ts.ForceRefresh(context.Background(), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "server_error")
	assert.EqualValues(t, 4+3, env.as.tokenRequests.Load(), "1 attempt + 2 retries")
}

// expireCached moves the cached access token of every entry into the past,
// as if it had expired while no process was running.
func expireCached(t *testing.T, c *Cache, now time.Time) {
	t.Helper()
	for _, e := range c.List() {
		require.NoError(t, c.Update(e.Key(), func(cur *Entry) *Entry {
			cur.Token.Expiry = now.Add(-10 * time.Second)
			cur.Token.ObtainedAt = now.Add(-5 * time.Minute)
			return cur
		}))
	}
}

// processHandler is what a separate run of the CLI has: its own Cache over
// the shared file (its own mutex and its own flock descriptor), its own
// handler loaded from that file.
func processHandler(t *testing.T, env *testEnv, now time.Time) *Handler {
	return env.handler(t, func(c *HandlerConfig) {
		c.Cache = NewCache(env.cache.Path())
		c.Now = func() time.Time { return now }
	})
}

func TestProcessesSharingACacheRefreshOnce(t *testing.T) {
	env := newEnv(t)
	_, _ = loggedIn(t, env)
	now := time.Now()
	expireCached(t, env.cache, now)
	before := env.cache.FindByResource(env.mcp.URL()).Token

	// Two "processes" find the same expired token and refresh at once; the
	// first refresh is slow so that the second waits on the cache lock.
	env.as.tokenDelay = 100 * time.Millisecond
	const procs = 4
	handlers := make([]*Handler, procs)
	for i := range handlers {
		handlers[i] = processHandler(t, env, now)
		require.NotNil(t, handlers[i].Current())
	}
	tokens := make([]*oauth2.Token, procs)
	var wg sync.WaitGroup
	for i, h := range handlers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := h.Current().Token()
			assert.NoError(t, err)
			tokens[i] = tok
		}()
	}
	wg.Wait()

	assert.EqualValues(t, 1, env.as.refreshes.Load(), "exactly one refresh request reached the AS")
	stored := env.cache.FindByResource(env.mcp.URL()).Token
	assert.NotEqual(t, before.RefreshToken, stored.RefreshToken, "the rotated token was stored")
	for _, tok := range tokens {
		require.NotNil(t, tok)
		assert.Equal(t, stored.AccessToken, tok.AccessToken, "every process uses the one refreshed token")
		assert.Equal(t, stored.RefreshToken, tok.RefreshToken)
	}
	assert.ElementsMatch(t, []string{"mcp:read", "offline_access"}, strings.Fields(stored.Scope))
}

func TestProcessAdoptsTokenRefreshedByAnother(t *testing.T) {
	env := newEnv(t)
	_, _ = loggedIn(t, env)
	now := time.Now()
	expireCached(t, env.cache, now)
	a, b := processHandler(t, env, now), processHandler(t, env, now)

	tokA, err := a.Current().Token()
	require.NoError(t, err)
	require.EqualValues(t, 1, env.as.refreshes.Load())

	// b still holds the expired token and the refresh token a rotated: it
	// re-reads the cache under the lock and takes a's token.
	tokB, err := b.Current().Token()
	require.NoError(t, err)
	assert.Equal(t, tokA.AccessToken, tokB.AccessToken)
	assert.EqualValues(t, 1, env.as.refreshes.Load(), "no second refresh")
	assert.Equal(t, 1, a.Current().Refreshes())
	assert.Equal(t, 0, b.Current().Refreshes(), "b sent no refresh request")
}

func TestProcessRefreshesWithTheRotatedTokenWhenStaleAgain(t *testing.T) {
	env := newEnv(t)
	_, _ = loggedIn(t, env)
	now := time.Now()
	expireCached(t, env.cache, now)
	a, b := processHandler(t, env, now), processHandler(t, env, now)
	_, err := a.Current().Token()
	require.NoError(t, err)
	// a's token expires too before b runs: b must refresh, and with the
	// refresh token a stored (its own was rotated away), not get
	// invalid_grant.
	expireCached(t, env.cache, now)
	rotated := env.cache.FindByResource(env.mcp.URL()).Token.RefreshToken

	tok, err := b.Current().Token()
	require.NoError(t, err)
	assert.EqualValues(t, 2, env.as.refreshes.Load())
	assert.NotEqual(t, rotated, tok.RefreshToken)
	assert.Equal(t, tok.RefreshToken, env.cache.FindByResource(env.mcp.URL()).Token.RefreshToken)
}

func TestRefreshGivesUpWhenAnotherProcessHoldsTheLockTooLong(t *testing.T) {
	env := newEnv(t)
	_, _ = loggedIn(t, env)
	now := time.Now()
	expireCached(t, env.cache, now)
	h := processHandler(t, env, now)
	e := env.cache.FindByResource(env.mcp.URL())

	// Another "process" holds the lock past the wait: no refresh is sent
	// (it could present the token the holder is rotating right now).
	held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- NewCache(env.cache.Path()).Exclusive(e.Key(), time.Second, func(*Entry) (*Entry, error) {
			close(held)
			<-release
			return nil, nil
		})
	}()
	<-held
	lock := &cacheRefreshLock{h: h, entry: *e, wait: 50 * time.Millisecond}
	called := false
	err := lock.WithRefreshLock(func(*StoredToken) (*StoredToken, error) { called = true; return nil, nil })
	require.ErrorIs(t, err, ErrCacheBusy)
	assert.False(t, called)
	close(release)
	require.NoError(t, <-done)

	// Once released, the lock is taken and the stored token handed over.
	err = lock.WithRefreshLock(func(st *StoredToken) (*StoredToken, error) {
		called = true
		require.NotNil(t, st)
		assert.Equal(t, e.Token.RefreshToken, st.Token.RefreshToken)
		return nil, nil
	})
	require.NoError(t, err)
	assert.True(t, called)
	assert.EqualValues(t, 0, env.as.refreshes.Load())
}

func TestRefreshWithoutAUsableCacheStillWorks(t *testing.T) {
	env := newEnv(t)
	_, ts := loggedIn(t, env)
	// The cache directory cannot be created (a file is in the way): the
	// refresh goes ahead alone, with a warning, and keeps the token in memory.
	blocker := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocker, []byte("x"), 0o600))
	var warnings []string
	h2 := env.handler(t, func(c *HandlerConfig) {
		c.Cache = NewCache(filepath.Join(blocker, "tokens.json"))
		c.Warn = func(m string) { warnings = append(warnings, m) }
	})
	e := env.cache.FindByResource(env.mcp.URL())
	src := h2.tokenSourceFor(e, ts.Current(), time.Time{})
	tok, err := src.ForceRefresh(context.Background(), "")
	require.NoError(t, err)
	assert.NotEqual(t, e.Token.AccessToken, tok.AccessToken)
	assert.EqualValues(t, 1, env.as.refreshes.Load())
	require.NotEmpty(t, warnings)
	assert.Contains(t, warnings[0], "not a directory")
}
