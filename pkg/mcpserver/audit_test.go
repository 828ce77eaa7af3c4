package mcpserver

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readAuditFile(t *testing.T, path string) []AuditRecord {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []AuditRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec AuditRecord
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), sc.Text())
		out = append(out, rec)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestAuditRecordsWrittenWithoutTokens(t *testing.T) {
	env := newTestEnv(t, nil)
	ctx := ctx10s(t)
	alice := env.token("alice", allScopes)
	cs := env.connect(alice)
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	readOnly := env.token("alice", "mcp:read")
	denied := env.post(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"add_note","arguments":{"text":"x"}}}`, bearer(readOnly))
	require.Equal(t, http.StatusForbidden, denied.StatusCode)
	require.Equal(t, http.StatusUnauthorized, env.post(initializeBody, bearer("garbage.token.here")).StatusCode)

	raw, err := os.ReadFile(env.cfg.Audit.File)
	require.NoError(t, err)
	for _, tok := range []string{alice, readOnly} {
		assert.NotContains(t, string(raw), tok)
		assert.NotContains(t, string(raw), tok[strings.LastIndex(tok, ".")+1:], "no signature either")
	}
	info, err := os.Stat(env.cfg.Audit.File)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	records := readAuditFile(t, env.cfg.Audit.File)
	var whoami, refusedScope, refusedToken *AuditRecord
	for i := range records {
		r := &records[i]
		assert.NotEmpty(t, r.RequestID)
		assert.NotEmpty(t, r.RemoteAddr)
		switch {
		case r.Tool == "whoami" && r.Outcome == OutcomeAllowed:
			whoami = r
		case r.Tool == "add_note" && r.Outcome == OutcomeDenied:
			refusedScope = r
		case r.Status == http.StatusUnauthorized && strings.Contains(r.Error, "invalid_token"):
			refusedToken = r
		}
	}
	require.NotNil(t, whoami, "allowed tools/call audited")
	assert.Equal(t, "alice", whoami.Subject)
	assert.Equal(t, "alice@example.com", whoami.Email)
	assert.Equal(t, "test-client", whoami.ClientID)
	assert.NotEmpty(t, whoami.JTI)
	assert.NotEmpty(t, whoami.SessionID)
	assert.Equal(t, "tools/call", whoami.Method)
	require.NotNil(t, refusedScope, "insufficient_scope refusal audited")
	assert.Equal(t, http.StatusForbidden, refusedScope.Status)
	assert.Contains(t, refusedScope.Error, "insufficient_scope")
	require.NotNil(t, refusedToken, "invalid token refusal audited")
	assert.Equal(t, "initialize", refusedToken.Method)
	assert.Empty(t, refusedToken.Subject)
}

func TestAuditLogsEndpoint(t *testing.T) {
	env := newTestEnv(t, nil)
	cs := env.connect(env.token("alice", allScopes))
	_, err := cs.CallTool(ctx10s(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "m"}})
	require.NoError(t, err)
	env.post(initializeBody, nil) // a denied one

	res := env.do(http.MethodGet, env.http.URL+"/audit-logs", "", nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res = env.do(http.MethodGet, env.http.URL+"/audit-logs", "", bearer(env.token("alice", "mcp:read mcp:write")))
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	p := challengeParams(t, res)
	assert.Equal(t, "insufficient_scope", p["error"])
	assert.Equal(t, "mcp:audit", p["scope"])

	auditor := bearer(env.token("auditor", "mcp:audit"))
	get := func(query string) []AuditRecord {
		res := env.do(http.MethodGet, env.http.URL+"/audit-logs"+query, "", auditor)
		require.Equal(t, http.StatusOK, res.StatusCode)
		// Records carry emails, jtis and addresses: never cached.
		assert.Equal(t, "no-store", res.Header.Get("Cache-Control"), query)
		assert.Equal(t, "no-cache", res.Header.Get("Pragma"), query)
		var body struct {
			Records []AuditRecord `json:"records"`
		}
		require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
		return body.Records
	}
	calls := get("?user=alice&method=tools/call")
	require.NotEmpty(t, calls)
	for _, r := range calls {
		assert.Equal(t, "alice", r.Subject)
		assert.Equal(t, "tools/call", r.Method)
	}
	assert.NotEmpty(t, get("?user=alice@example.com"))
	for _, r := range get("?outcome=denied") {
		assert.Equal(t, OutcomeDenied, r.Outcome)
	}
	assert.Len(t, get("?limit=1"), 1)
	assert.Empty(t, get("?since="+env.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	for _, bad := range []string{"?limit=0", "?limit=abc", "?since=yesterday", "?outcome=maybe"} {
		res := env.do(http.MethodGet, env.http.URL+"/audit-logs"+bad, "", auditor)
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, bad)
		assert.Equal(t, "no-store", res.Header.Get("Cache-Control"), bad)
		assert.Equal(t, "no-cache", res.Header.Get("Pragma"), bad)
	}
}

func TestAuditFailClosed(t *testing.T) {
	env := newTestEnv(t, nil)
	tok := env.token("alice", "mcp:read")
	require.Equal(t, http.StatusOK, env.post(initializeBody, bearer(tok)).StatusCode)
	require.NoError(t, env.srv.audit.Close()) // the sink breaks
	res := env.post(initializeBody, bearer(tok))
	assert.Equal(t, http.StatusInternalServerError, res.StatusCode)
	assert.Contains(t, readBody(t, res), "audit log unavailable")
	assert.Equal(t, http.StatusServiceUnavailable, env.do(http.MethodGet, env.http.URL+"/readyz", "", nil).StatusCode)
}

func TestAuditFailOpen(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Audit.FailClosed = false })
	require.NoError(t, env.srv.audit.Close())
	res := env.post(initializeBody, bearer(env.token("alice", "mcp:read")))
	assert.Equal(t, http.StatusOK, res.StatusCode)
}

func TestAuditRingBoundedAndSyncPolicies(t *testing.T) {
	clock := newTestClock()
	for _, policy := range []string{"always", "never", "1s"} {
		path := filepath.Join(t.TempDir(), "sub", "a.jsonl")
		a, err := openAuditLog(path, policy, clock.Now)
		require.NoError(t, err)
		for range 3 {
			require.NoError(t, a.Write(AuditRecord{Outcome: OutcomeAllowed}))
			clock.Advance(time.Second)
		}
		require.NoError(t, a.Close())
		assert.Len(t, readAuditFile(t, path), 3)
	}
	a, err := openAuditLog(filepath.Join(t.TempDir(), "a.jsonl"), "never", clock.Now)
	require.NoError(t, err)
	defer a.Close()
	for range auditRingSize + 5 {
		require.NoError(t, a.Write(AuditRecord{Outcome: OutcomeAllowed}))
	}
	assert.Len(t, a.Query(auditQuery{Limit: auditRingSize * 2}), auditRingSize)
	_, err = parseSyncPolicy("sometimes")
	assert.Error(t, err)
}

func TestAuditIntervalSyncCatchesQuietPeriods(t *testing.T) {
	clock := newTestClock() // frozen: only the background loop can sync
	a, err := openAuditLog(filepath.Join(t.TempDir(), "a.jsonl"), "20ms", clock.Now)
	require.NoError(t, err)
	defer a.Close()
	require.NoError(t, a.Write(AuditRecord{Outcome: OutcomeAllowed}))
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return !a.dirty
	}, 5*time.Second, 5*time.Millisecond)
}

// TestAuditFieldsAreClippedSoFloodsCannotFlushTheRing: requests without a
// token naming megabyte-sized tools are audited with the names cut to
// maxAuditField bytes, so a handful of them neither writes megabytes to the
// audit file nor pushes other users' records out of the in-memory ring.
func TestAuditFieldsAreClippedSoFloodsCannotFlushTheRing(t *testing.T) {
	env := newTestEnv(t, nil)
	cs := env.connect(env.token("alice", allScopes))
	for range 3 {
		_, err := cs.CallTool(ctx10s(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "m"}})
		require.NoError(t, err)
	}
	huge := strings.Repeat("é", 150_000) // 300 KB, two bytes a rune: the cut must keep UTF-8 whole
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + huge + `","arguments":{}}}`
	for range 20 {
		res := env.post(body, map[string]string{"Mcp-Session-Id": strings.Repeat("s", 4000)})
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	}

	auditor := bearer(env.token("auditor", "mcp:audit"))
	records := func(query string) []AuditRecord {
		res := env.do(http.MethodGet, env.http.URL+"/audit-logs"+query, "", auditor)
		require.Equal(t, http.StatusOK, res.StatusCode)
		var got struct {
			Records []AuditRecord `json:"records"`
		}
		require.NoError(t, json.NewDecoder(res.Body).Decode(&got))
		return got.Records
	}
	assert.GreaterOrEqual(t, len(records("?user=alice&method=tools/call")), 3, "alice's calls are still in the ring")
	denied := records("?outcome=denied&limit=1000")
	require.Len(t, denied, 20)
	for _, r := range denied {
		assert.LessOrEqual(t, len(r.Tool), maxAuditField+len("…(truncated)"))
		assert.True(t, strings.HasSuffix(r.Tool, "…(truncated)"), "the cut is marked")
		assert.True(t, utf8.ValidString(r.Tool), "cut on a rune boundary")
		assert.LessOrEqual(t, len(r.SessionID), maxAuditField+len("…(truncated)"))
	}
	for _, line := range readAuditFile(t, env.cfg.Audit.File) {
		assert.LessOrEqual(t, len(line.Tool), maxAuditField+len("…(truncated)"), "the file gets the clipped record too")
	}
}
