package client

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProbeGoodServer(t *testing.T) {
	env := newEnv(t)
	out, errOut, code := runCLI(t, "--config", writeTestConfig(t), "--mode", "headless", "--json", "probe", "--target", env.mcp.URL())
	require.Equal(t, 0, code, errOut)
	var rep struct {
		OK    bool        `json:"ok"`
		Steps []ProbeStep `json:"steps"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.True(t, rep.OK)
	require.Len(t, rep.Steps, len(probeSteps))
	for _, s := range rep.Steps {
		assert.Equal(t, "pass", s.Status, s.Name+": "+s.Detail)
	}
}

func TestProbeBrokenAS(t *testing.T) {
	env := newEnv(t)
	env.as.methods = []string{"plain"}
	out, errOut, code := runCLI(t, "--config", writeTestConfig(t), "--mode", "headless", "probe", "--target", env.mcp.URL())
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "PASS  401 challenge")
	assert.Contains(t, out, "FAIL  PKCE S256 advertised")
	assert.Contains(t, out, "SKIP  authorization")
	assert.Regexp(t, `^error: probe: step "PKCE S256 advertised" failed: [^\n]+\n$`, errOut)
}

func TestProbeServerWithoutAuth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	t.Cleanup(srv.Close)
	out, _, code := runCLI(t, "--config", writeTestConfig(t), "--mode", "headless", "probe", "--target", srv.URL+"/mcp")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "FAIL  401 challenge")
}

func TestProbeDeniedLogin(t *testing.T) {
	env := newEnv(t)
	env.as.deny = true
	out, _, code := runCLI(t, "--config", writeTestConfig(t), "--mode", "headless", "probe", "--target", env.mcp.URL())
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "PASS  client registration")
	assert.Contains(t, out, "FAIL  authorization")
}

func TestProbeWithoutResourceMetadata(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/mcp" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mcp"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	out, _, code := runCLI(t, "--config", writeTestConfig(t), "--mode", "headless", "probe", "--target", srv.URL+"/mcp")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "PASS  401 challenge")
	assert.Contains(t, out, "FAIL  protected resource metadata")
}
