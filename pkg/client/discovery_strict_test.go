package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// metadataServer serves the given JSON documents by path and 404 for the
// rest, counting every request.
func metadataServer(t *testing.T, docs func(base string) map[string]any) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if doc, ok := docs(srv.URL)[r.URL.Path]; ok {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(doc)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func discoverCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func challengeFor(prmURL string) *Challenge {
	return &Challenge{Status: http.StatusUnauthorized, Challenges: []oauthex.Challenge{
		{Scheme: "bearer", Params: map[string]string{"resource_metadata": prmURL}},
	}}
}

func TestDiscoverStopsWhenTheChallengesResourceMetadataIsMissing(t *testing.T) {
	mcp, _ := metadataServer(t, func(string) map[string]any { return nil })
	prm := mcp.URL + "/.well-known/oauth-protected-resource/unknown"
	_, err := Discover(discoverCtx(t), http.DefaultClient, mcp.URL+"/mcp", challengeFor(prm))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "protected resource metadata "+prm)
}

func TestDiscoverRefusesAnASWithoutMetadata(t *testing.T) {
	notAS, asHits := metadataServer(t, func(string) map[string]any { return nil })
	mcp, _ := metadataServer(t, func(base string) map[string]any {
		return map[string]any{"/.well-known/oauth-protected-resource/mcp": map[string]any{
			"resource": base + "/mcp", "authorization_servers": []string{notAS.URL}}}
	})
	_, err := Discover(discoverCtx(t), http.DefaultClient, mcp.URL+"/mcp", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), notAS.URL)
	assert.Contains(t, err.Error(), "RFC 8414")
	assert.LessOrEqual(t, asHits.Load(), int32(2), "only the two well-known metadata URLs")
}

func TestDiscoverRefusesASMetadataWithoutEndpoints(t *testing.T) {
	for _, missing := range []string{"authorization_endpoint", "token_endpoint"} {
		t.Run(missing, func(t *testing.T) {
			srv, _ := metadataServer(t, func(base string) map[string]any {
				meta := map[string]any{"issuer": base, "authorization_endpoint": base + "/authorize",
					"token_endpoint": base + "/token", "response_types_supported": []string{"code"},
					"code_challenge_methods_supported": []string{"S256"}}
				delete(meta, missing)
				return map[string]any{
					"/.well-known/oauth-protected-resource/mcp": map[string]any{
						"resource": base + "/mcp", "authorization_servers": []string{base}},
					"/.well-known/oauth-authorization-server": meta,
				}
			})
			_, err := Discover(discoverCtx(t), http.DefaultClient, srv.URL+"/mcp", nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "lacks authorization_endpoint or token_endpoint")
		})
	}
}

func TestDiscoverKeepsThe20250326FallbackWithoutAnyMetadata(t *testing.T) {
	srv, _ := metadataServer(t, func(string) map[string]any { return nil })
	d, err := Discover(discoverCtx(t), http.DefaultClient, srv.URL+"/mcp", nil)
	require.NoError(t, err)
	assert.True(t, d.ASMFallback)
	assert.Equal(t, srv.URL+"/token", d.ASM.TokenEndpoint)
}

func TestCacheTightensAWorldReadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"version":1,"entries":{}}`), 0o600))
	require.NoError(t, os.Chmod(path, 0o644))
	var warnings []string
	c := NewCache(path)
	c.Warn = func(msg string) { warnings = append(warnings, msg) }
	assert.Nil(t, c.Get("k"))
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	require.Len(t, warnings, 1)
	assert.True(t, strings.Contains(warnings[0], "made it 0600"), warnings[0])
}
