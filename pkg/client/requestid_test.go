package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/requestid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// commandRequestIDs runs one CLI command and returns the X-Request-Id of
// every request it sent to the fake AS and MCP server.
func commandRequestIDs(t *testing.T, env *testEnv, args ...string) (ids map[string]bool, requests int) {
	t.Helper()
	env.as.seen.take()
	env.mcp.seen.take()
	_, errOut, code := runCLI(t, args...)
	require.Equal(t, 0, code, errOut)
	ids = map[string]bool{}
	for _, r := range append(env.as.seen.take(), env.mcp.seen.take()...) {
		assert.True(t, requestid.Valid(r.requestID), "%s carries a valid X-Request-Id, got %q", r.what, r.requestID)
		ids[r.requestID] = true
		requests++
	}
	return ids, requests
}

// TestCLIOneRequestIDPerCommand: every request of one command, to the
// authorization server and to the MCP server, carries the same X-Request-Id,
// so the command can be followed across both servers' logs; the next command
// has another.
func TestCLIOneRequestIDPerCommand(t *testing.T) {
	env := newEnv(t)
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	common := []string{"--config", writeTestConfig(t), "--server", env.mcp.URL(), "--mode", "headless", "--token-file", tokens}

	// A first call logs in: challenge, discovery, registration, authorize,
	// token, then the MCP session.
	first, n := commandRequestIDs(t, env, append(common, "call", "whoami")...)
	assert.Len(t, first, 1, "one id for the whole command")
	assert.GreaterOrEqual(t, n, 6, "login and call requests were all recorded")
	assert.EqualValues(t, 1, env.as.authorizations.Load())

	second, _ := commandRequestIDs(t, env, append(common, "tools")...)
	assert.Len(t, second, 1)
	for id := range second {
		assert.False(t, first[id], "each command has its own id")
	}
}

// TestRequestIDReachesRequestsOutsideTheCommandContext: a request made
// under a context that does not descend from the command's (a token refresh
// through oauth2.TokenSource.Token(), the SDK's session requests) carries
// the command's id too, while an id already in the context wins.
func TestRequestIDReachesRequestsOutsideTheCommandContext(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(requestid.Header)
	}))
	t.Cleanup(srv.Close)
	oauthClient, _ := NewHTTPClients(0, 0)
	c := withRequestID(oauthClient, "cmd-id")

	do := func(ctx context.Context) string {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		res, err := c.Do(req)
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
		return <-got
	}
	assert.Equal(t, "cmd-id", do(context.Background()))
	assert.Equal(t, "other", do(requestid.NewContext(context.Background(), "other")))
}
