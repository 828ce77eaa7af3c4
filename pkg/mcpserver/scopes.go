package mcpserver

// This file maps tools to the OAuth scopes a tools/call needs, from code
// defaults overridden by config (tools.<name>.scopes), and holds the scope
// helpers the middleware uses for RFC 6750 §3.1 insufficient_scope answers.

import (
	"slices"
	"strings"
)

// Scope names this server knows.
const (
	ScopeRead  = "mcp:read"
	ScopeWrite = "mcp:write"
	ScopeAudit = "mcp:audit"
)

// Tool names.
const (
	toolWhoami    = "whoami"
	toolEcho      = "echo"
	toolCalculate = "calculate"
	toolAddNote   = "add_note"
	toolListNotes = "list_notes"
)

// defaultToolScopes is what each tool needs when config does not say.
func defaultToolScopes() map[string][]string {
	return map[string][]string{
		toolWhoami:    {ScopeRead},
		toolEcho:      {ScopeRead},
		toolCalculate: {ScopeRead},
		toolAddNote:   {ScopeRead, ScopeWrite},
		toolListNotes: {ScopeRead},
	}
}

// toolScopes answers which scopes a call of a tool needs. It is immutable
// after construction, so it is safe for concurrent use.
type toolScopes struct {
	base    string
	perTool map[string][]string
}

// newToolScopes merges the code defaults with the configured overrides. The
// base scope (auth.required_scope) is always part of every tool's needs, so a
// challenge's scope list is complete.
func newToolScopes(base string, configured map[string]ToolConfig) *toolScopes {
	t := &toolScopes{base: base, perTool: map[string][]string{}}
	for name, scopes := range defaultToolScopes() {
		if tc, ok := configured[name]; ok && tc.Scopes != nil {
			scopes = tc.Scopes
		}
		t.perTool[name] = unionScopes([]string{base}, scopes)
	}
	return t
}

// forTool returns every scope a tools/call of name needs. An unknown tool
// needs only the base scope: the SDK answers it with a JSON-RPC error.
func (t *toolScopes) forTool(name string) []string {
	if s, ok := t.perTool[name]; ok {
		return s
	}
	return []string{t.base}
}

// supported lists every scope the tools use, for scopes_supported in the
// resource metadata. offline_access never appears: it concerns the
// authorization server, not this resource (MCP 2026-07-28).
func (t *toolScopes) supported() []string {
	all := []string{t.base}
	for _, s := range t.perTool {
		all = unionScopes(all, s)
	}
	all = unionScopes(all, []string{ScopeAudit})
	all = slices.DeleteFunc(all, func(s string) bool { return s == scopeOfflineAccess })
	slices.Sort(all)
	return all
}

// unionScopes returns a followed by the elements of b not in a, keeping order
// and dropping duplicates.
func unionScopes(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for _, s := range append(slices.Clone(a), b...) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// addScopes is unionScopes(need, add) for the per-request scope check,
// without a new slice in the usual cases: add is every scope of one tool
// (the base scope included), so when need is only the base scope or already
// holds all of add, one of the two is the union. The result is shared:
// callers only read it.
func addScopes(need, add []string) []string {
	if containsAll(need, add) {
		return need
	}
	if containsAll(add, need) {
		return add
	}
	return unionScopes(need, add)
}

// containsAll reports whether every element of sub is in set.
func containsAll(set, sub []string) bool {
	for _, s := range sub {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}

// missingScopes returns the scopes of need not granted.
func missingScopes(granted, need []string) []string {
	var missing []string
	for _, s := range need {
		if !slices.Contains(granted, s) {
			missing = append(missing, s)
		}
	}
	return missing
}

// parseScope splits an RFC 6749 §3.3 scope string.
func parseScope(s string) []string {
	return strings.Fields(s)
}
