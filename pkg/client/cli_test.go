package client

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCacheWarningsArePrintedOnce(t *testing.T) {
	env := newEnv(t)
	corrupt := filepath.Join(t.TempDir(), "tokens.json")
	require.NoError(t, os.WriteFile(corrupt, []byte("this is not json"), 0o600))
	cases := map[string]string{"corrupt": corrupt, "unusable directory": unusableTokenFile(t)}
	for name, tokenFile := range cases {
		t.Run(name, func(t *testing.T) {
			_, errOut, code := runCLI(t, "--config", writeTestConfig(t), "--server", env.mcp.URL(),
				"--mode", "headless", "--token-file", tokenFile, "call", "whoami")
			require.Equal(t, 0, code, errOut)
			warnings := linesWith(errOut, "warning: ")
			require.NotEmpty(t, warnings)
			seen := map[string]bool{}
			for _, w := range warnings {
				assert.False(t, seen[w], "printed twice: %s", w)
				seen[w] = true
			}
		})
	}
}

func TestWarnIsBounded(t *testing.T) {
	var errOut bytes.Buffer
	a := &App{errOut: &errOut}
	for i := range 2 * maxWarnings {
		a.warn(string(rune('a'+i%26)) + string(rune('a'+i/26)))
		a.warn("same")
	}
	assert.Len(t, linesWith(errOut.String(), "warning: "), maxWarnings)
}
