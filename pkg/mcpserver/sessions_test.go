package mcpserver

import (
	"encoding/json"
	"net/http"
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
	require.Equal(t, http.StatusNoContent, env.do(http.MethodDelete, env.mcpURL(), "", withSession(alice, ids[0])).StatusCode)
	require.Eventually(t, func() bool { return env.srv.userSessions.held("alice") == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, http.StatusOK, env.post(initializeBody, alice).StatusCode)
	assert.Equal(t, http.StatusTooManyRequests, env.post(initializeBody, alice).StatusCode)
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

func TestSessionsPerSubjectCounts(t *testing.T) {
	p := newSessionsPerSubject(2)
	assert.True(t, p.acquire("a"))
	assert.True(t, p.acquire("a"))
	assert.False(t, p.acquire("a"))
	assert.True(t, p.acquire("b"))
	p.release("a")
	assert.True(t, p.acquire("a"))
	p.release("a")
	p.release("a")
	p.release("b")
	assert.Empty(t, p.count, "subjects without sessions leave the map")
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
