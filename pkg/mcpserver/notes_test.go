package mcpserver

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoteStoreGlobalByteCap: the per-user caps alone let 10,000 users hold
// 100 notes of 4 KiB each (about 4 GB); the store as a whole stops at
// maxNoteStoreBytes, for every user, with an error that says why.
func TestNoteStoreGlobalByteCap(t *testing.T) {
	store := newNoteStore(time.Now)
	text := strings.Repeat("x", maxNoteBytes) // one string shared by every note: the test itself stays small
	const users = 300                         // 300 x 100 x 4 KiB is about 120 MiB, past the cap
	var stored int
	var full error
	for u := 0; u < users && full == nil; u++ {
		for i := 0; i < maxNotesPerUser; i++ {
			if _, err := store.add(fmt.Sprintf("user-%d", u), text); err != nil {
				full = err
				break
			}
			stored += noteCost(text)
		}
	}
	require.Error(t, full, "the store must fill up before %d users x %d notes", users, maxNotesPerUser)
	require.ErrorIs(t, full, errNoteLimit)
	assert.Contains(t, full.Error(), "note storage is full")
	assert.LessOrEqual(t, stored, maxNoteStoreBytes)
	assert.Greater(t, stored, maxNoteStoreBytes-noteCost(text), "the cap is not hit early")

	// Full means full for every user, new ones included; the refused call
	// stored nothing.
	_, err := store.add("someone-new", text)
	require.ErrorIs(t, err, errNoteLimit)
	assert.Empty(t, store.list("someone-new"))
}

func TestAddNoteToolWhenStoreFull(t *testing.T) {
	env := newTestEnv(t, nil)
	env.srv.notes.maxBytes = noteCost("first note") // room for exactly one note
	cs := env.connect(env.token("alice", allScopes))
	ctx := ctx10s(t)

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"text": "first note"}})
	require.NoError(t, err)
	require.False(t, res.IsError, toolText(t, res))

	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"text": "second"}})
	require.NoError(t, err, "a full store is a tool error, not a protocol error")
	assert.True(t, res.IsError)
	assert.Contains(t, toolText(t, res), "note storage is full")

	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_notes"})
	require.NoError(t, err)
	assert.Len(t, structured[ListNotesOutput](t, res).Notes, 1)
}
