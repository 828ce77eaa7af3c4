package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unusableTokenFile is a token file whose directory cannot be created (a
// file is in the way).
func unusableTokenFile(t *testing.T) string {
	blocker := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(blocker, []byte("x"), 0o600))
	return filepath.Join(blocker, "tokens.json")
}

func TestLoginFailsWhenTheTokensCannotBeCached(t *testing.T) {
	env := newEnv(t)
	common := []string{"--config", writeTestConfig(t), "--server", env.mcp.URL(), "--mode", "headless",
		"--token-file", unusableTokenFile(t)}

	out, errOut, code := runCLI(t, append(common, "login")...)
	assert.Equal(t, 1, code, "login exists to cache the tokens: a failed write fails it")
	assert.Empty(t, out)
	errLines := linesWith(errOut, "error: ")
	require.Len(t, errLines, 1, errOut)
	assert.Regexp(t, `^error: login: logged in, but the tokens could not be cached: .*not a directory \(the unsaved refresh token was revoked\)$`, errLines[0])
	assert.Len(t, env.as.revoked, 1, "no live refresh token is left behind")
	assert.NotContains(t, errOut, "eyJ", "no token in the output")

	// Other commands keep working with the tokens in memory, with a warning.
	out, errOut, code = runCLI(t, append(common, "call", "whoami")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "you are alice")
	assert.NotEmpty(t, linesWith(errOut, "warning: "))
	assert.Empty(t, linesWith(errOut, "error: "))
}

func TestLoginSucceedsWhenTheCacheIsWritten(t *testing.T) {
	env := newEnv(t)
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	_, errOut, code := runCLI(t, "--config", writeTestConfig(t), "--server", env.mcp.URL(), "--mode", "headless",
		"--token-file", tokens, "login")
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, env.as.revoked)
	assert.NotNil(t, NewCache(tokens).FindByResource(env.mcp.URL()).Token)
}

func linesWith(s, prefix string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}
