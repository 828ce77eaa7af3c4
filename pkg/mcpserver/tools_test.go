package mcpserver

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func toolText(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	require.NotEmpty(t, res.Content)
	tc, ok := res.Content[0].(*mcp.TextContent)
	require.True(t, ok)
	return tc.Text
}

func structured[T any](t *testing.T, res *mcp.CallToolResult) T {
	t.Helper()
	var out T
	b, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestToolsOverSDKClient(t *testing.T) {
	env := newTestEnv(t, nil)
	ctx := ctx10s(t)
	cs := env.connect(env.token("alice", allScopes))

	tools, err := cs.ListTools(ctx, nil)
	require.NoError(t, err)
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	assert.ElementsMatch(t, []string{"whoami", "echo", "calculate", "add_note", "list_notes"}, names)

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	require.False(t, res.IsError)
	who := structured[WhoamiOutput](t, res)
	assert.Equal(t, "alice", who.Subject)
	assert.Equal(t, "alice@example.com", who.Email)
	assert.Equal(t, "test-client", who.ClientID)
	assert.ElementsMatch(t, []string{"mcp:read", "mcp:write", "mcp:audit"}, who.Scopes)
	assert.NotEmpty(t, who.ExpiresAt)

	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hello"}})
	require.NoError(t, err)
	assert.Equal(t, "hello", toolText(t, res))

	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "calculate", Arguments: map[string]any{"operation": "multiply", "a": 6, "b": 7}})
	require.NoError(t, err)
	require.False(t, res.IsError)
	assert.Equal(t, 42.0, structured[CalculateOutput](t, res).Result)

	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "calculate", Arguments: map[string]any{"operation": "divide", "a": 1, "b": 0}})
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, toolText(t, res), "division by zero")

	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "calculate", Arguments: map[string]any{"operation": "pow", "a": 1, "b": 2}})
	require.NoError(t, err)
	assert.True(t, res.IsError)

	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"text": "buy milk"}})
	require.NoError(t, err)
	require.False(t, res.IsError, toolText(t, res))
	note := structured[Note](t, res)
	assert.Equal(t, "buy milk", note.Text)

	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_notes"})
	require.NoError(t, err)
	listed := structured[ListNotesOutput](t, res)
	require.Len(t, listed.Notes, 1)
	assert.Equal(t, "buy milk", listed.Notes[0].Text)

	// Resources: the two demo documents and the caller's own notes.
	resources, err := cs.ListResources(ctx, nil)
	require.NoError(t, err)
	var uris []string
	for _, r := range resources.Resources {
		uris = append(uris, r.URI)
	}
	assert.ElementsMatch(t, []string{readmeURI, configURI}, uris)
	templates, err := cs.ListResourceTemplates(ctx, nil)
	require.NoError(t, err)
	assert.Len(t, templates.ResourceTemplates, 2)
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: readmeURI})
	require.NoError(t, err)
	assert.Contains(t, rr.Contents[0].Text, "RFC 9728")
	rr, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: configURI})
	require.NoError(t, err)
	assert.Contains(t, rr.Contents[0].Text, testResource)
	rr, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "notes://alice/" + note.ID})
	require.NoError(t, err)
	assert.Equal(t, "buy milk", rr.Contents[0].Text)
	rr, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "notes://alice"})
	require.NoError(t, err)
	assert.Contains(t, rr.Contents[0].Text, "buy milk")

	// Prompts.
	prompts, err := cs.ListPrompts(ctx, nil)
	require.NoError(t, err)
	require.NotEmpty(t, prompts.Prompts)
	pr, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "summarize_notes", Arguments: map[string]string{"style": "bullets"}})
	require.NoError(t, err)
	assert.Contains(t, pr.Messages[0].Content.(*mcp.TextContent).Text, "buy milk")
}

func TestNotesArePerUser(t *testing.T) {
	env := newTestEnv(t, nil)
	ctx := ctx10s(t)
	alice := env.connect(env.token("alice", allScopes))
	bob := env.connect(env.token("bob", allScopes))
	res, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"text": "alice's secret"}})
	require.NoError(t, err)
	require.False(t, res.IsError)
	id := structured[Note](t, res).ID

	res, err = bob.CallTool(ctx, &mcp.CallToolParams{Name: "list_notes"})
	require.NoError(t, err)
	assert.Empty(t, structured[ListNotesOutput](t, res).Notes)
	_, err = bob.ReadResource(ctx, &mcp.ReadResourceParams{URI: "notes://alice/" + id})
	require.Error(t, err, "bob cannot read alice's note")
	_, err = bob.ReadResource(ctx, &mcp.ReadResourceParams{URI: "notes://alice"})
	require.Error(t, err)
}

func TestToolHandlerRechecksScopes(t *testing.T) {
	// Defence in depth: even if a request reached the SDK without the
	// HTTP-layer check, the handler refuses.
	env := newTestEnv(t, nil)
	srv := env.srv
	id := &Identity{Subject: "alice", Scopes: []string{"mcp:read"}}
	req := &mcp.CallToolRequest{Extra: &mcp.RequestExtra{TokenInfo: tokenInfoFor(id)}}
	_, _, err := srv.addNote(ctx10s(t), req, AddNoteInput{Text: "x"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "insufficient scope")
	_, _, err = srv.whoami(ctx10s(t), &mcp.CallToolRequest{}, struct{}{})
	require.Error(t, err, "no token info: refused")
}

func TestSessionBoundToUser(t *testing.T) {
	env := newTestEnv(t, nil)
	res := env.post(initializeBody, bearer(env.token("alice", "mcp:read")))
	require.Equal(t, http.StatusOK, res.StatusCode)
	sid := res.Header.Get("Mcp-Session-Id")
	require.NotEmpty(t, sid)
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

	// Bob's valid token with Alice's session id: refused.
	headers := bearer(env.token("bob", "mcp:read"))
	headers["Mcp-Session-Id"] = sid
	headers["Mcp-Protocol-Version"] = "2025-06-18"
	res = env.post(list, headers)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)

	// Alice with a fresh token of her own: fine.
	headers = bearer(env.token("alice", "mcp:read"))
	headers["Mcp-Session-Id"] = sid
	headers["Mcp-Protocol-Version"] = "2025-06-18"
	res = env.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, headers)
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	res = env.post(list, headers)
	assert.Equal(t, http.StatusOK, res.StatusCode)

	// The session never authenticates by itself: no token, 401.
	res = env.post(list, map[string]string{"Mcp-Session-Id": sid})
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
}

func TestStatelessMode(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Server.Stateless = true })
	cs := env.connect(env.token("alice", allScopes))
	res, err := cs.CallTool(ctx10s(t), &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err)
	assert.Equal(t, "alice", structured[WhoamiOutput](t, res).Subject)
}

func TestSessionCountBounded(t *testing.T) {
	env := newTestEnv(t, nil)
	env.srv.maxSessions = 2
	tok := env.token("alice", "mcp:read")
	for range 2 {
		require.Equal(t, http.StatusOK, env.post(initializeBody, bearer(tok)).StatusCode)
	}
	res := env.post(initializeBody, bearer(tok))
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.NotEmpty(t, res.Header.Get("Retry-After"))
}

func TestNotesResourceForSubjectWithReservedCharacters(t *testing.T) {
	env := newTestEnv(t, nil)
	ctx := ctx10s(t)
	cs := env.connect(env.token("carol@example.com", allScopes))
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"text": "hi"}})
	require.NoError(t, err)
	id := structured[Note](t, res).ID
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "notes://carol%40example.com/" + id})
	require.NoError(t, err)
	assert.Equal(t, "hi", rr.Contents[0].Text)
	_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "notes://example.com/" + id})
	require.Error(t, err)
}
