package client

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleEntry(resource string) *Entry {
	return &Entry{Resource: resource, Issuer: "http://as", TokenEndpoint: "http://as/token",
		Client: &ClientRecord{ClientID: "c", Registration: RegistrationDynamic},
		Token:  &TokenRecord{AccessToken: "a", RefreshToken: "r", Expiry: time.Unix(2e9, 0).UTC(), Scope: "mcp:read"}}
}

func TestCacheRoundTripAndPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "tokens.json")
	c := NewCache(path)
	require.NoError(t, c.Put(sampleEntry("http://mcp/a")))
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	dir, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), dir.Mode().Perm())

	got := NewCache(path).Get(CacheKey("http://mcp/a", "http://as"))
	require.NotNil(t, got)
	assert.Equal(t, "r", got.Token.RefreshToken)
	assert.Equal(t, "c", got.Client.ClientID)
	assert.Equal(t, got, NewCache(path).FindByResource("http://mcp/a"))

	require.NoError(t, c.Delete(got.Key()))
	assert.Nil(t, c.Get(got.Key()))
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".tokens-*"))
	assert.Empty(t, leftovers, "no temp files left behind")
}

func TestCacheCorruptFileIsAWarning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	var warnings []string
	c := NewCache(path)
	c.Warn = func(s string) { warnings = append(warnings, s) }
	assert.Nil(t, c.FindByResource("http://mcp/a"))
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "corrupt")
	// The next write replaces the corrupt file.
	require.NoError(t, c.Put(sampleEntry("http://mcp/a")))
	assert.NotNil(t, NewCache(path).FindByResource("http://mcp/a"))
}

func TestCacheUnreadableFileIsAWarning(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads anything: use a directory where the file should be.
		path := filepath.Join(t.TempDir(), "tokens.json")
		require.NoError(t, os.Mkdir(path, 0o700))
		var warned bool
		c := NewCache(path)
		c.Warn = func(string) { warned = true }
		assert.Nil(t, c.FindByResource("x"))
		assert.True(t, warned)
		return
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	require.NoError(t, os.WriteFile(path, []byte("{}"), 0o000))
	var warned bool
	c := NewCache(path)
	c.Warn = func(string) { warned = true }
	assert.Nil(t, c.FindByResource("x"))
	assert.True(t, warned)
}

func TestCacheUnwritableDirIsAnError(t *testing.T) {
	base := t.TempDir()
	blocker := filepath.Join(base, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	// The cache dir would have to be inside a regular file: cannot exist.
	c := NewCache(filepath.Join(blocker, "tokens.json"))
	err := c.Put(sampleEntry("http://mcp/a"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cache")
}

func TestCacheConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	// Several Cache values on one file stand in for several processes: each
	// has its own mutex, so only the file lock keeps their writes apart.
	const writers, perWriter = 8, 5
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := NewCache(path)
			for i := range perWriter {
				assert.NoError(t, c.Put(sampleEntry(fmt.Sprintf("http://mcp/%d/%d", w, i))))
			}
		}()
	}
	wg.Wait()
	entries := NewCache(path).List()
	assert.Len(t, entries, writers*perWriter, "no write lost")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(raw), "{"))
}

func TestCacheInMemory(t *testing.T) {
	c := NewCache("")
	require.NoError(t, c.Put(sampleEntry("http://mcp/a")))
	assert.NotNil(t, c.FindByResource("http://mcp/a"))
	assert.Equal(t, "", c.Path())
}
