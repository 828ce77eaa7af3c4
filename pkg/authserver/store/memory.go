package store

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// DefaultMemoryLimit caps each table of a Memory store.
// Half a million records of a few hundred bytes: room for long load tests,
// still a bound on what outside input can make the process hold.
const DefaultMemoryLimit = 500_000

// Memory is a Store in process memory. It is safe for concurrent use; each
// table is capped (expired records are dropped first when one is full).
type Memory struct {
	mu    sync.Mutex
	now   func() time.Time
	limit int
	// lastSweep is when a full table last triggered a sweep.
	lastSweep time.Time
	clients   map[string]Client
	// active is when each dynamic client was last registered or used.
	active   map[string]time.Time
	codes    map[string]Code
	families map[string]Family
	refresh  map[string]RefreshToken
	access   map[string]AccessToken
}

// NewMemory returns an empty memory store; now is its clock for dropping
// expired records, limit caps each table (0: DefaultMemoryLimit).
func NewMemory(now func() time.Time, limit int) *Memory {
	if now == nil {
		now = time.Now
	}
	if limit <= 0 {
		limit = DefaultMemoryLimit
	}
	m := &Memory{now: now, limit: limit}
	m.clear()
	return m
}

func (m *Memory) clear() {
	m.clients = map[string]Client{}
	m.active = map[string]time.Time{}
	m.codes = map[string]Code{}
	m.families = map[string]Family{}
	m.refresh = map[string]RefreshToken{}
	m.access = map[string]AccessToken{}
}

// room makes room for one more record in a table of size n by dropping
// expired records when the cap is reached. The sweep touches every record,
// so a full store sweeps at most once a second rather than on every write.
func (m *Memory) room(n int) {
	if n < m.limit {
		return
	}
	now := m.now()
	if now.Sub(m.lastSweep) < time.Second {
		return
	}
	m.lastSweep = now
	m.deleteExpired(now)
}

func (m *Memory) full(n int) bool { return n >= m.limit }

// PutClient implements Store.
func (m *Memory) PutClient(_ context.Context, c Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, exists := m.clients[c.ID]; !exists && m.full(len(m.clients)) {
		return ErrFull
	}
	m.clients[c.ID] = cloneClient(c)
	if c.Dynamic && c.IssuedAt.After(m.active[c.ID]) {
		m.active[c.ID] = c.IssuedAt
	}
	return nil
}

// GetClient implements Store.
func (m *Memory) GetClient(_ context.Context, id string) (Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return Client{}, ErrNotFound
	}
	return cloneClient(c), nil
}

// DeleteClient implements Store.
func (m *Memory) DeleteClient(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.clients, id)
	delete(m.active, id)
	return nil
}

// CountDynamicClients implements Store.
func (m *Memory) CountDynamicClients(_ context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.countDynamicLocked(), nil
}

func (m *Memory) countDynamicLocked() int {
	n := 0
	for _, c := range m.clients {
		if c.Dynamic {
			n++
		}
	}
	return n
}

// CreateDynamicClient implements Store: the count and the insert happen
// under one hold of the lock. The count walks the clients, which the cap
// itself bounds.
func (m *Memory) CreateDynamicClient(_ context.Context, c Client, max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, exists := m.clients[c.ID]; exists {
		return ErrExists
	}
	if m.countDynamicLocked() >= max || m.full(len(m.clients)) {
		return ErrFull
	}
	c.Dynamic = true
	m.clients[c.ID] = cloneClient(c)
	m.active[c.ID] = c.IssuedAt
	return nil
}

// PutCode implements Store.
func (m *Memory) PutCode(_ context.Context, c Code) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.room(len(m.codes))
	if m.full(len(m.codes)) {
		return ErrFull
	}
	c.Claims = maps.Clone(c.Claims)
	m.codes[c.Hash] = c
	return nil
}

// GetCode implements Store.
func (m *Memory) GetCode(_ context.Context, hash string) (Code, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.codes[hash]
	if !ok {
		return Code{}, ErrNotFound
	}
	c.Claims = maps.Clone(c.Claims)
	return c, nil
}

// TakeCode implements Store.
func (m *Memory) TakeCode(_ context.Context, hash string) (Code, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.codes[hash]
	if !ok {
		return Code{}, ErrNotFound
	}
	used := c
	used.Used = true
	m.codes[hash] = used
	c.Claims = maps.Clone(c.Claims)
	return c, nil
}

// PutFamily implements Store.
func (m *Memory) PutFamily(_ context.Context, f Family) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.room(len(m.families))
	old, exists := m.families[f.ID]
	if !exists && m.full(len(m.families)) {
		return ErrFull
	}
	// A refresh racing a revocation must not bring the family back.
	f.Revoked = f.Revoked || old.Revoked
	m.families[f.ID] = f
	return nil
}

// GetFamily implements Store.
func (m *Memory) GetFamily(_ context.Context, id string) (Family, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.families[id]
	if !ok {
		return Family{}, ErrNotFound
	}
	return f, nil
}

// RevokeFamily implements Store.
func (m *Memory) RevokeFamily(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revokeFamilyLocked(id)
	return nil
}

func (m *Memory) revokeFamilyLocked(id string) {
	if id == "" {
		return // client_credentials tokens belong to no family
	}
	f, ok := m.families[id]
	if !ok {
		// A tombstone: tokens still being issued in this family (a race
		// with the replay that revoked it) are born revoked.
		f = Family{ID: id, ExpiresAt: m.now().Add(TombstoneTTL)}
	}
	f.Revoked = true
	m.families[id] = f
	for jti, a := range m.access {
		if a.FamilyID == id {
			a.Revoked = true
			m.access[jti] = a
		}
	}
}

// PutRefresh implements Store.
func (m *Memory) PutRefresh(_ context.Context, t RefreshToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.room(len(m.refresh))
	if m.full(len(m.refresh)) {
		return ErrFull
	}
	t.Claims = maps.Clone(t.Claims)
	m.refresh[t.Hash] = t
	return nil
}

// GetRefresh implements Store.
func (m *Memory) GetRefresh(_ context.Context, hash string) (RefreshToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.refresh[hash]
	if !ok {
		return RefreshToken{}, ErrNotFound
	}
	t.Claims = maps.Clone(t.Claims)
	return t, nil
}

// TakeRefresh implements Store.
func (m *Memory) TakeRefresh(_ context.Context, hash string) (RefreshToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.refresh[hash]
	if !ok {
		return RefreshToken{}, ErrNotFound
	}
	used := t
	used.Used = true
	m.refresh[hash] = used
	t.Claims = maps.Clone(t.Claims)
	return t, nil
}

// PutAccess implements Store.
func (m *Memory) PutAccess(_ context.Context, t AccessToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.room(len(m.access))
	if m.full(len(m.access)) {
		return ErrFull
	}
	m.access[t.JTI] = t
	return nil
}

// GetAccess implements Store.
func (m *Memory) GetAccess(_ context.Context, jti string) (AccessToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.access[jti]
	if !ok {
		return AccessToken{}, ErrNotFound
	}
	return t, nil
}

// RevokeAccess implements Store.
func (m *Memory) RevokeAccess(_ context.Context, t AccessToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.access[t.JTI]
	if !ok {
		m.room(len(m.access))
		if m.full(len(m.access)) {
			return ErrFull
		}
		rec = t
	}
	rec.Revoked = true
	m.access[t.JTI] = rec
	return nil
}

// RevokeSubject implements Store.
func (m *Memory) RevokeSubject(_ context.Context, subject string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, f := range m.families {
		if f.Subject == subject {
			m.revokeFamilyLocked(id)
		}
	}
	for jti, a := range m.access {
		if a.Subject == subject {
			a.Revoked = true
			m.access[jti] = a
		}
	}
	return nil
}

// TouchClient implements Store.
func (m *Memory) TouchClient(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.clients[id]; ok && c.Dynamic && at.After(m.active[id]) {
		m.active[id] = at
	}
	return nil
}

// SweepIdleClients implements Store. It walks the families once, which
// the memory cap bounds; it runs only when registration is full or when
// expired records are pruned.
func (m *Memory) SweepIdleClients(_ context.Context, before, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	live := map[string]bool{}
	for _, f := range m.families {
		if !f.Revoked && now.Before(f.ExpiresAt) {
			live[f.ClientID] = true
		}
	}
	n := 0
	for id, c := range m.clients {
		active, ok := m.active[id]
		if !ok {
			active = c.IssuedAt
		}
		if c.Dynamic && active.Before(before) && !live[id] {
			delete(m.clients, id)
			delete(m.active, id)
			n++
		}
	}
	return n, nil
}

// DeleteExpired implements Store.
func (m *Memory) DeleteExpired(_ context.Context, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleteExpired(now)
	return nil
}

func (m *Memory) deleteExpired(now time.Time) {
	for k, c := range m.codes {
		if now.After(c.ExpiresAt.Add(CodeGrace)) {
			delete(m.codes, k)
		}
	}
	for k, t := range m.refresh {
		if now.After(t.ExpiresAt) {
			delete(m.refresh, k)
		}
	}
	for k, f := range m.families {
		if now.After(f.ExpiresAt) {
			delete(m.families, k)
		}
	}
	for k, a := range m.access {
		if now.After(a.ExpiresAt) {
			delete(m.access, k)
		}
	}
}

// Reset implements Store.
func (m *Memory) Reset(_ context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clear()
	return nil
}

// Close implements Store.
func (m *Memory) Close() error { return nil }

func cloneClient(c Client) Client {
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.ResponseTypes = slices.Clone(c.ResponseTypes)
	c.Scopes = slices.Clone(c.Scopes)
	return c
}
