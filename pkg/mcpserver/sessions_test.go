package mcpserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSessionsPerUserBounded: one subject cannot take every session; past
// server.max_sessions_per_user it gets 429 with a JSON-RPC error body, other
// subjects are unaffected, and a closed session gives its slot back.
func TestSessionsPerUserBounded(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Server.MaxSessionsPerUser = 2 })
	alice := bearer(env.token("alice", "mcp:read"))
	var ids []string
	for range 2 {
		res := env.post(initializeBody, alice)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.NotEmpty(t, res.Header.Get("Mcp-Session-Id"))
		ids = append(ids, res.Header.Get("Mcp-Session-Id"))
	}

	res := env.post(initializeBody, alice)
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	assert.NotEmpty(t, res.Header.Get("Retry-After"))
	assert.Empty(t, res.Header.Get("Mcp-Session-Id"))
	var body struct {
		JSONRPC string `json:"jsonrpc"`
		ID      any    `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	assert.Equal(t, "2.0", body.JSONRPC)
	assert.Nil(t, body.ID)
	assert.Equal(t, -32000, body.Error.Code)
	assert.Contains(t, body.Error.Message, "too many open sessions for this user")
	records := readAuditFile(t, env.cfg.Audit.File)
	last := records[len(records)-1]
	assert.Equal(t, OutcomeDenied, last.Outcome)
	assert.Equal(t, "alice", last.Subject)

	// Another user still gets a session; alice's open ones still work.
	require.Equal(t, http.StatusOK, env.post(initializeBody, bearer(env.token("bob", "mcp:read"))).StatusCode)
	ping := `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	require.Equal(t, http.StatusOK, env.post(ping, withSession(alice, ids[0])).StatusCode)

	// Ending a session (DELETE; expiry closes it the same way) frees a slot.
	// The slot is found free by the refused request itself (acquire asks
	// the SDK), not by anything watching the session.
	require.Equal(t, http.StatusNoContent, env.do(http.MethodDelete, env.mcpURL(), "", withSession(alice, ids[0])).StatusCode)
	require.Eventually(t, func() bool { return env.post(initializeBody, alice).StatusCode == http.StatusOK },
		5*time.Second, 5*time.Millisecond, "a refused initialize opens no session")
	assert.Equal(t, http.StatusTooManyRequests, env.post(initializeBody, alice).StatusCode)
	assert.Equal(t, 2, env.srv.userSessions.held("alice"))
}

// TestSessionSlotNotKeptByFailedInitialize: a POST without Mcp-Session-Id
// that is not an initialize makes the SDK create and close a session at
// once; its slot is given back when the request's handler returns (which
// can be a moment after the client has read the answer).
func TestSessionSlotNotKeptByFailedInitialize(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Server.MaxSessionsPerUser = 1 })
	alice := bearer(env.token("alice", "mcp:read"))
	for range 3 {
		res := env.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, alice)
		assert.NotEqual(t, http.StatusTooManyRequests, res.StatusCode)
		assert.Empty(t, res.Header.Get("Mcp-Session-Id"))
		require.Eventually(t, func() bool { return env.srv.userSessions.held("alice") == 0 }, 5*time.Second, 5*time.Millisecond)
	}
	assert.Equal(t, http.StatusOK, env.post(initializeBody, alice).StatusCode)
}

// TestSessionsPerSubjectCounts: reservations and open sessions both count;
// a session the SDK no longer has is forgotten when its subject is at the
// cap; a request that opened none gives its slot back at once.
func TestSessionsPerSubjectCounts(t *testing.T) {
	live := map[string]bool{}
	p := newSessionsPerSubject(2, 100, fakeStillOpen(live, nil))
	require.True(t, p.acquire("a"))
	require.True(t, p.acquire("a"))
	assert.False(t, p.acquire("a"), "two reservations in flight")
	live["s1"], live["s2"] = true, true
	p.opened("a", "s1")
	p.opened("a", "s2")
	assert.Equal(t, 2, p.held("a"))
	assert.False(t, p.acquire("a"), "two sessions open")
	assert.True(t, p.acquire("b"), "another subject is not held back")
	p.opened("b", "")
	assert.Equal(t, 0, p.held("b"), "no session opened: the slot is back")

	delete(live, "s1") // DELETE or expiry, seen only by the SDK
	assert.True(t, p.acquire("a"), "the closed session is forgotten at the cap")
	p.opened("a", "")
	assert.Equal(t, 1, p.held("a"))
	delete(live, "s2")
	assert.Equal(t, 0, p.held("a"))
	assert.Empty(t, p.open, "subjects without sessions leave the maps")
	assert.Empty(t, p.reserved)
	assert.Zero(t, p.ids)
}

// TestSessionsPerSubjectForgetsAtMaxIDs: ids of sessions that closed while
// their subject never came back are dropped once maxIDs ids are remembered,
// so the maps stay bounded.
func TestSessionsPerSubjectForgetsAtMaxIDs(t *testing.T) {
	live := map[string]bool{}
	p := newSessionsPerSubject(1, 10, fakeStillOpen(live, nil))
	for i := range 1000 {
		sub, id := fmt.Sprintf("user-%d", i), fmt.Sprintf("s-%d", i)
		require.True(t, p.acquire(sub))
		live[id] = true
		p.opened(sub, id)
		if i >= 5 { // at most 5 (maxIDs/2) stay open, like maxSessions
			delete(live, id) // closed; its subject does not return
		}
		require.LessOrEqual(t, p.ids, 10, "after opening %d", i)
		require.LessOrEqual(t, len(p.open), 10)
	}
	// What is still open is still counted.
	assert.Equal(t, 1, p.held("user-4"))
	assert.False(t, p.acquire("user-4"))
	assert.Equal(t, 0, p.held("user-999"))
}

// fakeStillOpen answers from live (guarded by mu when given), as the SDK's
// session list would.
func fakeStillOpen(live map[string]bool, mu *sync.Mutex) func([]string) map[string]bool {
	return func(ids []string) map[string]bool {
		if mu != nil {
			mu.Lock()
			defer mu.Unlock()
		}
		open := map[string]bool{}
		for _, id := range ids {
			open[id] = live[id]
		}
		return open
	}
}

// TestSessionsPerSubjectAtCapAsksOnlyWithIDs: a subject whose slots are all
// requests in flight is refused without asking the SDK; one with sessions
// asks about its own ids only.
func TestSessionsPerSubjectAtCapAsksOnlyWithIDs(t *testing.T) {
	var asked [][]string
	p := newSessionsPerSubject(1, 100, func(ids []string) map[string]bool {
		asked = append(asked, slices.Clone(ids))
		return map[string]bool{}
	})
	require.True(t, p.acquire("a"))
	assert.False(t, p.acquire("a"))
	assert.Empty(t, asked, "nothing to ask about: the slot is a request in flight")
	p.opened("a", "s1")
	require.True(t, p.acquire("b"))
	p.opened("b", "s2")
	assert.True(t, p.acquire("a"), "s1 is closed: forgotten, the slot is free")
	assert.Equal(t, [][]string{{"s1"}}, asked, "only a's ids")
}

// TestSessionsPerSubjectConcurrent: subjects acquiring, opening and closing
// sessions at once never exceed the cap, and the counts come back to zero
// (run with -race).
func TestSessionsPerSubjectConcurrent(t *testing.T) {
	var mu sync.Mutex
	live := map[string]bool{}
	p := newSessionsPerSubject(3, 50, fakeStillOpen(live, &mu))
	var wg sync.WaitGroup
	var over atomic.Int32
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := fmt.Sprintf("user-%d", w%3)
			for i := range 300 {
				if !p.acquire(sub) {
					continue
				}
				id := fmt.Sprintf("s-%d-%d", w, i)
				mu.Lock()
				live[id] = true
				mu.Unlock()
				p.opened(sub, id)
				if p.held(sub) > 3 {
					over.Add(1)
				}
				mu.Lock()
				delete(live, id) // closed at once
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Zero(t, over.Load(), "a subject held more than its cap")
	for w := range 3 {
		assert.Zero(t, p.held(fmt.Sprintf("user-%d", w)))
	}
	assert.Empty(t, p.reserved)
	assert.Zero(t, p.ids)
}

func TestMaxSessionsPerUserValidated(t *testing.T) {
	for _, n := range []int{0, -1, maxSessions + 1} {
		cfg := DefaultConfig()
		cfg.Server.MaxSessionsPerUser = n
		assert.ErrorContains(t, cfg.Validate(), "server.max_sessions_per_user", n)
	}
}

func withSession(headers map[string]string, id string) map[string]string {
	out := map[string]string{"Mcp-Session-Id": id, "Mcp-Protocol-Version": "2025-06-18"}
	for k, v := range headers {
		out[k] = v
	}
	return out
}
