package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// cacheVersion is bumped when the file layout changes incompatibly; a file
// with another version is treated like a corrupt one (fresh login).
const cacheVersion = 1

// maxCacheBytes bounds how much of the cache file is read.
const maxCacheBytes = 4 << 20

// lockWait bounds how long a writer waits for another process holding the
// cache lock (writes take milliseconds; a longer wait means a stuck peer).
const lockWait = 10 * time.Second

// ErrCacheBusy is wrapped by the error of a cache operation that waited too
// long for another process holding the cache lock.
var ErrCacheBusy = errors.New("token cache locked by another process")

// ClientRecord is the OAuth client the tokens were issued to. A dynamically
// registered client (RFC 7591) is kept so the next run reuses it instead of
// registering again.
type ClientRecord struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	// Registration is "dynamic", "preregistered" or "cimd".
	Registration string `json:"registration"`
	// AuthStyle is how the token endpoint authenticates the client (oauth2.AuthStyle).
	AuthStyle    int       `json:"auth_style"`
	RedirectURI  string    `json:"redirect_uri,omitempty"`
	RegisteredAt time.Time `json:"registered_at,omitzero"`
}

// TokenRecord is the stored form of an oauth2.Token plus its granted scope.
type TokenRecord struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Scope        string    `json:"scope,omitempty"`
	// ObtainedAt is when the token was received: with Expiry it gives the
	// lifetime, which bounds how early the token is refreshed.
	ObtainedAt time.Time `json:"obtained_at,omitzero"`
}

// Entry is what the cache holds for one (resource, issuer) pair.
type Entry struct {
	Resource string `json:"resource"`
	// ServerURL is the MCP endpoint the entry was made for (usually equal
	// to Resource), used to find the entry before discovery.
	ServerURL          string        `json:"server_url,omitempty"`
	Issuer             string        `json:"issuer"`
	TokenEndpoint      string        `json:"token_endpoint,omitempty"`
	RevocationEndpoint string        `json:"revocation_endpoint,omitempty"`
	Client             *ClientRecord `json:"client,omitempty"`
	Token              *TokenRecord  `json:"token,omitempty"`
	UpdatedAt          time.Time     `json:"updated_at"`
}

// Key is the cache key of the entry.
func (e *Entry) Key() string { return CacheKey(e.Resource, e.Issuer) }

// CacheKey keys entries by resource and issuer: a token is only valid for
// the audience and the authorization server that issued it.
func CacheKey(resource, issuer string) string { return resource + " " + issuer }

// OAuth2Token converts the stored token.
func (t *TokenRecord) OAuth2Token() *oauth2.Token {
	tok := &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType,
		RefreshToken: t.RefreshToken, Expiry: t.Expiry}
	if t.Scope != "" {
		tok = tok.WithExtra(map[string]any{"scope": t.Scope})
	}
	return tok
}

// TokenRecordFrom converts an oauth2.Token, keeping the previous scope when
// the token response did not repeat it (RFC 6749 §5.1: scope is optional
// when unchanged).
func TokenRecordFrom(tok *oauth2.Token, prevScope string) *TokenRecord {
	scope := prevScope
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		scope = s
	}
	return &TokenRecord{AccessToken: tok.AccessToken, TokenType: tok.TokenType,
		RefreshToken: tok.RefreshToken, Expiry: tok.Expiry, Scope: scope}
}

type cacheFile struct {
	Version int               `json:"version"`
	Entries map[string]*Entry `json:"entries"`
}

// Cache is the on-disk token cache: one JSON file, mode 0600 in a 0700
// directory, replaced atomically (temp file + rename in the same directory)
// so a crash never leaves half a file. Writers in this process are
// serialised by a mutex and writers in other processes by an advisory lock
// on a sibling ".lock" file; each write re-reads the file under the lock, so
// concurrent runs do not drop each other's entries.
//
// A corrupt or unreadable file is reported through Warn and treated as
// empty: the user logs in again instead of seeing a crash.
type Cache struct {
	path string
	// Warn receives one-line warnings (never secrets).
	Warn func(msg string)
	// Now is the clock used for UpdatedAt.
	Now func() time.Time
	mu  sync.Mutex
	mem *cacheFile // used when path is empty: an in-memory cache (--no-cache)
}

// NewCache returns a cache stored at path; an empty path keeps entries in
// memory only.
func NewCache(path string) *Cache {
	return &Cache{path: path, Warn: func(string) {}, Now: time.Now}
}

// Path is the cache file ("" for the in-memory cache).
func (c *Cache) Path() string { return c.path }

// Get returns the entry for key, or nil.
func (c *Cache) Get(key string) *Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.readShared()
	return f.Entries[key]
}

// FindByResource returns the most recently updated entry for resource, or
// nil. It is used before discovery, when the issuer is not yet known.
func (c *Cache) FindByResource(resource string) *Entry {
	var best *Entry
	for _, e := range c.List() {
		if (e.Resource == resource || e.ServerURL == resource) && (best == nil || e.UpdatedAt.After(best.UpdatedAt)) {
			best = e
		}
	}
	return best
}

// List returns every entry, sorted by key.
func (c *Cache) List() []*Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.readShared()
	out := make([]*Entry, 0, len(f.Entries))
	for _, e := range f.Entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

// Update applies fn to the entry for key (nil when absent) under the lock and
// stores what fn returns; a nil result deletes the entry.
func (c *Cache) Update(key string, fn func(*Entry) *Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.path == "" {
		if c.mem == nil {
			c.mem = &cacheFile{Version: cacheVersion, Entries: map[string]*Entry{}}
		}
		applyUpdate(c.mem, key, fn, c.Now())
		return nil
	}
	unlock, err := c.lock(lockWait)
	if err != nil {
		return err
	}
	defer unlock()
	f := c.read()
	applyUpdate(f, key, fn, c.Now())
	return c.write(f)
}

// Exclusive runs fn on the entry for key (a copy; nil when absent) with the
// cache locked, against this process and other processes, for the whole
// call: a decision fn takes on the entry ("nobody has refreshed this token
// yet") still holds when its result is stored. fn may do network I/O; wait
// bounds how long to wait for another process holding the lock. A non-nil
// entry returned by fn is stored before the lock is released; when fn
// fails nothing is stored and its error is returned as is. When the lock
// cannot be taken fn is not called and the error says why (wrapping
// ErrCacheBusy when another process held it too long).
func (c *Cache) Exclusive(key string, wait time.Duration, fn func(cur *Entry) (*Entry, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.mem
	if c.path != "" {
		unlock, err := c.lock(wait)
		if err != nil {
			return err
		}
		defer unlock()
		f = c.read()
	} else if f == nil {
		f = &cacheFile{Version: cacheVersion, Entries: map[string]*Entry{}}
		c.mem = f
	}
	var cur *Entry
	if e, ok := f.Entries[key]; ok {
		cp := *e
		cur = &cp
	}
	next, err := fn(cur)
	if err != nil || next == nil {
		return err
	}
	next.UpdatedAt = c.Now()
	f.Entries[key] = next
	if c.path == "" {
		return nil
	}
	return c.write(f)
}

// lock takes the cross-process lock (a sibling ".lock" file, so the cache
// file itself can be replaced by rename while it is held). c.mu must be
// held.
func (c *Cache) lock(wait time.Duration) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return nil, fmt.Errorf("create cache dir: %w", err)
	}
	unlock, err := lockFile(c.path+".lock", wait)
	if err != nil {
		return nil, fmt.Errorf("lock token cache: %w", err)
	}
	return unlock, nil
}

// Put stores e under its key.
func (c *Cache) Put(e *Entry) error {
	return c.Update(e.Key(), func(*Entry) *Entry { return e })
}

// Delete removes the entry for key.
func (c *Cache) Delete(key string) error {
	return c.Update(key, func(*Entry) *Entry { return nil })
}

func applyUpdate(f *cacheFile, key string, fn func(*Entry) *Entry, now time.Time) {
	var cur *Entry
	if e, ok := f.Entries[key]; ok {
		cp := *e
		cur = &cp
	}
	next := fn(cur)
	if next == nil {
		delete(f.Entries, key)
		return
	}
	next.UpdatedAt = now
	f.Entries[key] = next
}

// readShared reads the file for a lookup (no lock file: the rename makes
// every read see a whole file).
func (c *Cache) readShared() *cacheFile {
	if c.path == "" {
		if c.mem == nil {
			return &cacheFile{Version: cacheVersion, Entries: map[string]*Entry{}}
		}
		return c.mem
	}
	return c.read()
}

func (c *Cache) read() *cacheFile {
	empty := &cacheFile{Version: cacheVersion, Entries: map[string]*Entry{}}
	fh, err := os.Open(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return empty
	}
	if err != nil {
		c.Warn(fmt.Sprintf("token cache %s unreadable (%v): logging in again", c.path, errors.Unwrap(err)))
		return empty
	}
	defer fh.Close()
	if info, err := fh.Stat(); err == nil && info.Mode().Perm()&0o077 != 0 {
		// Tighten it now: a read-only run never rewrites the file, and the
		// tokens must not stay readable until some later write.
		if err := fh.Chmod(0o600); err != nil {
			c.Warn(fmt.Sprintf("token cache %s is readable by others (mode %v) and could not be made 0600: %v", c.path, info.Mode().Perm(), errors.Unwrap(err)))
		} else {
			c.Warn(fmt.Sprintf("token cache %s was readable by others (mode %v): made it 0600", c.path, info.Mode().Perm()))
		}
	}
	var f cacheFile
	dec := json.NewDecoder(&limitedReader{r: fh, n: maxCacheBytes})
	if err := dec.Decode(&f); err != nil || f.Version != cacheVersion || f.Entries == nil {
		c.Warn(fmt.Sprintf("token cache %s is corrupt or from another version: ignoring it and logging in again", c.path))
		return empty
	}
	for k, e := range f.Entries {
		if e == nil {
			delete(f.Entries, k)
		}
	}
	return &f
}

// write replaces the file atomically: a temp file in the same directory
// (rename is only atomic within one file system), 0600 from creation, synced,
// then renamed over the old file.
func (c *Cache) write(f *cacheFile) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode token cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".tokens-*.tmp")
	if err != nil {
		return fmt.Errorf("write token cache: %w", err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write token cache: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write token cache: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write token cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write token cache: %w", err)
	}
	if err := os.Rename(tmpName, c.path); err != nil {
		return fmt.Errorf("write token cache: %w", err)
	}
	ok = true
	return nil
}

type limitedReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

// Read implements io.Reader, failing once the limit is passed.
func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("token cache too large")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
