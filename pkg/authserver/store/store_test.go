package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// eachStore runs a contract test against both implementations.
func eachStore(t *testing.T, test func(t *testing.T, s Store)) {
	t.Run("memory", func(t *testing.T) {
		test(t, NewMemory(func() time.Time { return epoch }, 0))
	})
	t.Run("sqlite", func(t *testing.T) {
		s, err := OpenSQLite(filepath.Join(t.TempDir(), "db", "as.db"), func() time.Time { return epoch })
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		test(t, s)
	})
}

func TestClients(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		_, err := s.GetClient(ctx, "a")
		assert.ErrorIs(t, err, ErrNotFound)
		c := Client{ID: "a", Name: "A", RedirectURIs: []string{"https://a/cb"}, GrantTypes: []string{"authorization_code"}, AuthMethod: "none", Dynamic: true, IssuedAt: epoch}
		require.NoError(t, s.PutClient(ctx, c))
		require.NoError(t, s.PutClient(ctx, Client{ID: "b", AuthMethod: "none"}))
		got, err := s.GetClient(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, c.RedirectURIs, got.RedirectURIs)
		assert.True(t, got.IssuedAt.Equal(epoch))
		n, err := s.CountDynamicClients(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		require.NoError(t, s.DeleteClient(ctx, "a"))
		_, err = s.GetClient(ctx, "a")
		assert.ErrorIs(t, err, ErrNotFound)
	})
}

// TestCreateDynamicClientCapIsAtomic races more creations than the cap
// allows: exactly max succeed, the rest get ErrFull, and statically
// configured clients do not count against the cap.
func TestCreateDynamicClientCapIsAtomic(t *testing.T) {
	const max, racers = 5, 40
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		require.NoError(t, s.PutClient(ctx, Client{ID: "static", AuthMethod: "none"}))
		var created, full int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.CreateDynamicClient(ctx, Client{ID: fmt.Sprintf("dyn-%d", i), AuthMethod: "none"}, max)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					created++
				case errors.Is(err, ErrFull):
					full++
				default:
					t.Errorf("create: %v", err)
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, max, created)
		assert.Equal(t, racers-max, full)
		n, err := s.CountDynamicClients(ctx)
		require.NoError(t, err)
		assert.Equal(t, max, n)
	})
}

func TestCreateDynamicClientRefusesTakenID(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		require.NoError(t, s.PutClient(ctx, Client{ID: "taken", Name: "static", AuthMethod: "none"}))
		assert.ErrorIs(t, s.CreateDynamicClient(ctx, Client{ID: "taken", Name: "dyn", AuthMethod: "none"}, 10), ErrExists)
		got, err := s.GetClient(ctx, "taken")
		require.NoError(t, err)
		assert.Equal(t, "static", got.Name, "the existing client is untouched")
		require.NoError(t, s.CreateDynamicClient(ctx, Client{ID: "new", AuthMethod: "none"}, 10))
		got, err = s.GetClient(ctx, "new")
		require.NoError(t, err)
		assert.True(t, got.Dynamic)
	})
}

func TestCodesAreSingleUse(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		require.NoError(t, s.PutCode(ctx, Code{Hash: "h", ClientID: "c", Claims: map[string]any{"email": "a@b"}, ExpiresAt: epoch.Add(time.Minute), FamilyID: "f"}))
		// Looking a code up does not spend it.
		for range 2 {
			got, err := s.GetCode(ctx, "h")
			require.NoError(t, err)
			assert.False(t, got.Used)
			assert.Equal(t, "c", got.ClientID)
			assert.Equal(t, "a@b", got.Claims["email"])
		}
		first, err := s.TakeCode(ctx, "h")
		require.NoError(t, err)
		assert.False(t, first.Used)
		assert.Equal(t, "a@b", first.Claims["email"])
		second, err := s.TakeCode(ctx, "h")
		require.NoError(t, err)
		assert.True(t, second.Used)
		_, err = s.TakeCode(ctx, "other")
		assert.ErrorIs(t, err, ErrNotFound)
		got, err := s.GetCode(ctx, "h")
		require.NoError(t, err)
		assert.True(t, got.Used)
		_, err = s.GetCode(ctx, "other")
		assert.ErrorIs(t, err, ErrNotFound)
	})
}

func TestConcurrentTakeHasOneWinner(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		require.NoError(t, s.PutRefresh(ctx, RefreshToken{Hash: "r", FamilyID: "f", ExpiresAt: epoch.Add(time.Hour)}))
		var mu sync.Mutex
		fresh := 0
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rt, err := s.TakeRefresh(ctx, "r")
				if assert.NoError(t, err) && !rt.Used {
					mu.Lock()
					fresh++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, 1, fresh)
	})
}

func TestFamiliesAndRevocation(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		require.NoError(t, s.PutFamily(ctx, Family{ID: "f", ClientID: "c", Subject: "alice", ExpiresAt: epoch.Add(time.Hour)}))
		require.NoError(t, s.PutFamily(ctx, Family{ID: "g", ClientID: "c", Subject: "bob", ExpiresAt: epoch.Add(time.Hour)}))
		require.NoError(t, s.PutRefresh(ctx, RefreshToken{Hash: "r", FamilyID: "f", Scope: "a b", ExpiresAt: epoch.Add(time.Hour)}))
		for _, a := range []AccessToken{
			{JTI: "j1", FamilyID: "f", Subject: "alice", ExpiresAt: epoch.Add(time.Hour)},
			{JTI: "j2", FamilyID: "g", Subject: "bob", ExpiresAt: epoch.Add(time.Hour)},
			{JTI: "j3", Subject: "svc", ExpiresAt: epoch.Add(time.Hour)},
			{JTI: "j4", Subject: "alice", ExpiresAt: epoch.Add(time.Hour)},
		} {
			require.NoError(t, s.PutAccess(ctx, a))
		}
		rt, err := s.GetRefresh(ctx, "r")
		require.NoError(t, err)
		assert.Equal(t, "a b", rt.Scope)

		require.NoError(t, s.RevokeFamily(ctx, "f"))
		require.NoError(t, s.RevokeFamily(ctx, ""), "no family: nothing to do")
		f, err := s.GetFamily(ctx, "f")
		require.NoError(t, err)
		assert.True(t, f.Revoked)
		// Re-putting a revoked family (a racing refresh) does not un-revoke it.
		require.NoError(t, s.PutFamily(ctx, Family{ID: "f", ClientID: "c", Subject: "alice", ExpiresAt: epoch.Add(2 * time.Hour)}))
		f, _ = s.GetFamily(ctx, "f")
		assert.True(t, f.Revoked)
		a1, _ := s.GetAccess(ctx, "j1")
		assert.True(t, a1.Revoked)
		a3, _ := s.GetAccess(ctx, "j3")
		assert.False(t, a3.Revoked)

		require.NoError(t, s.RevokeAccess(ctx, AccessToken{JTI: "j3"}))
		a3, _ = s.GetAccess(ctx, "j3")
		assert.True(t, a3.Revoked)
		// A token never recorded is recorded as revoked.
		require.NoError(t, s.RevokeAccess(ctx, AccessToken{JTI: "cc", ClientID: "svc", ExpiresAt: epoch.Add(time.Hour)}))
		cc, err := s.GetAccess(ctx, "cc")
		require.NoError(t, err)
		assert.True(t, cc.Revoked)
		assert.Equal(t, "svc", cc.ClientID)

		require.NoError(t, s.RevokeSubject(ctx, "alice"))
		a4, _ := s.GetAccess(ctx, "j4")
		assert.True(t, a4.Revoked)
		g, _ := s.GetFamily(ctx, "g")
		assert.False(t, g.Revoked)
	})
}

func TestRevokingAnUnknownFamilyLeavesATombstone(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		require.NoError(t, s.RevokeFamily(ctx, "late"))
		require.NoError(t, s.PutFamily(ctx, Family{ID: "late", ClientID: "c", Subject: "alice", ExpiresAt: epoch.Add(time.Hour)}))
		f, err := s.GetFamily(ctx, "late")
		require.NoError(t, err)
		assert.True(t, f.Revoked)
	})
}

func TestDeleteExpiredAndReset(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		require.NoError(t, s.PutCode(ctx, Code{Hash: "c", ExpiresAt: epoch}))
		require.NoError(t, s.PutRefresh(ctx, RefreshToken{Hash: "r", ExpiresAt: epoch.Add(time.Hour)}))
		require.NoError(t, s.PutAccess(ctx, AccessToken{JTI: "j", ExpiresAt: epoch.Add(time.Minute)}))
		require.NoError(t, s.DeleteExpired(ctx, epoch.Add(30*time.Minute)))
		_, err := s.TakeCode(ctx, "c")
		assert.NoError(t, err, "codes are kept past expiry to recognise replays")
		_, err = s.GetAccess(ctx, "j")
		assert.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, s.DeleteExpired(ctx, epoch.Add(CodeGrace+time.Minute)))
		_, err = s.TakeCode(ctx, "c")
		assert.ErrorIs(t, err, ErrNotFound)

		require.NoError(t, s.PutClient(ctx, Client{ID: "x"}))
		require.NoError(t, s.Reset(ctx))
		_, err = s.GetClient(ctx, "x")
		assert.ErrorIs(t, err, ErrNotFound)
		_, err = s.GetRefresh(ctx, "r")
		assert.ErrorIs(t, err, ErrNotFound)
	})
}

func TestMemoryIsCapped(t *testing.T) {
	ctx := context.Background()
	now := epoch
	m := NewMemory(func() time.Time { return now }, 3)
	for i, h := range []string{"a", "b", "c"} {
		require.NoError(t, m.PutCode(ctx, Code{Hash: h, ExpiresAt: epoch.Add(time.Duration(i+1) * time.Minute)}))
	}
	assert.ErrorIs(t, m.PutCode(ctx, Code{Hash: "d", ExpiresAt: epoch.Add(time.Hour)}), ErrFull)
	// Once old codes are past their grace period they make room.
	now = epoch.Add(CodeGrace + 2*time.Minute + time.Second)
	require.NoError(t, m.PutCode(ctx, Code{Hash: "d", ExpiresAt: now.Add(time.Hour)}))
	for _, id := range []string{"1", "2", "3"} {
		require.NoError(t, m.PutClient(ctx, Client{ID: id}))
	}
	assert.ErrorIs(t, m.PutClient(ctx, Client{ID: "4"}), ErrFull)
	require.NoError(t, m.PutClient(ctx, Client{ID: "1", Name: "replace"}))
}

func TestSQLiteSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "as.db")
	s, err := OpenSQLite(path, nil)
	require.NoError(t, err)
	require.NoError(t, s.PutClient(ctx, Client{ID: "dyn", Dynamic: true, AuthMethod: "none"}))
	require.NoError(t, s.PutFamily(ctx, Family{ID: "f", Revoked: true, ExpiresAt: epoch.Add(time.Hour)}))
	require.NoError(t, s.Close())
	s, err = OpenSQLite(path, nil)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.GetClient(ctx, "dyn")
	require.NoError(t, err)
	f, err := s.GetFamily(ctx, "f")
	require.NoError(t, err)
	assert.True(t, f.Revoked)
}

// SweepIdleClients removes dynamic clients idle since before that hold no
// live refresh-token family, and nothing else.
func TestSweepIdleClients(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		create := func(id string) {
			require.NoError(t, s.CreateDynamicClient(ctx, Client{ID: id, IssuedAt: epoch}, 100))
		}
		create("idle")
		create("used")
		create("live-grant")
		create("dead-grant")
		create("revoked-grant")
		require.NoError(t, s.PutClient(ctx, Client{ID: "configured", IssuedAt: epoch}))
		require.NoError(t, s.CreateDynamicClient(ctx, Client{ID: "young", IssuedAt: epoch.Add(90 * time.Minute)}, 100))

		require.NoError(t, s.TouchClient(ctx, "used", epoch.Add(90*time.Minute)))
		require.NoError(t, s.TouchClient(ctx, "configured", epoch.Add(90*time.Minute)))
		require.NoError(t, s.TouchClient(ctx, "no-such-client", epoch.Add(90*time.Minute)))
		require.NoError(t, s.PutFamily(ctx, Family{ID: "f1", ClientID: "live-grant", Subject: "u", ExpiresAt: epoch.Add(30 * 24 * time.Hour)}))
		require.NoError(t, s.PutFamily(ctx, Family{ID: "f2", ClientID: "dead-grant", Subject: "u", ExpiresAt: epoch.Add(time.Hour)}))
		require.NoError(t, s.PutFamily(ctx, Family{ID: "f3", ClientID: "revoked-grant", Subject: "u", ExpiresAt: epoch.Add(30 * 24 * time.Hour)}))
		require.NoError(t, s.RevokeFamily(ctx, "f3"))

		now := epoch.Add(2 * time.Hour)
		n, err := s.SweepIdleClients(ctx, now.Add(-time.Hour), now)
		require.NoError(t, err)
		assert.Equal(t, 3, n)
		for id, kept := range map[string]bool{
			"idle": false, "dead-grant": false, "revoked-grant": false,
			"used": true, "live-grant": true, "configured": true, "young": true,
		} {
			_, err := s.GetClient(ctx, id)
			assert.Equal(t, kept, err == nil, id)
		}
		count, err := s.CountDynamicClients(ctx)
		require.NoError(t, err)
		assert.Equal(t, 3, count)

		// A sweep later removes what has since gone idle; again is a no-op.
		later := now.Add(2 * time.Hour)
		n, err = s.SweepIdleClients(ctx, later.Add(-time.Hour), later)
		require.NoError(t, err)
		assert.Equal(t, 2, n, "used and young are idle now; live-grant still holds a grant")
		n, err = s.SweepIdleClients(ctx, later.Add(-time.Hour), later)
		require.NoError(t, err)
		assert.Zero(t, n)
	})
}
