package mcpserver

// This file is the audit log with user attribution: one JSON line per MCP
// request, refused ones included, appended to audit.file before the
// response is sent and synced per audit.sync. It never contains a token:
// only the token's jti and the claims that identify the caller. The most
// recent records are also kept in a bounded ring for GET /audit-logs.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Outcomes of an audited request.
const (
	OutcomeAllowed = "allowed" // passed authorization; the SDK answered
	OutcomeDenied  = "denied"  // refused by authentication or authorization
	OutcomeError   = "error"   // failed for another reason (bad request, unavailable)
)

// AuditRecord is one line of the audit log.
type AuditRecord struct {
	Time       time.Time `json:"time"`
	RequestID  string    `json:"request_id"`
	Subject    string    `json:"subject,omitempty"`
	Email      string    `json:"email,omitempty"`
	ClientID   string    `json:"client_id,omitempty"`
	JTI        string    `json:"jti,omitempty"`
	SessionID  string    `json:"session_id,omitempty"`
	HTTPMethod string    `json:"http_method"`
	Path       string    `json:"path"`
	Method     string    `json:"method,omitempty"`
	Tool       string    `json:"tool,omitempty"`
	Resource   string    `json:"resource,omitempty"`
	Outcome    string    `json:"outcome"`
	Status     int       `json:"status"`
	Error      string    `json:"error,omitempty"`
	DurationMS float64   `json:"duration_ms"`
	RemoteAddr string    `json:"remote_addr"`
}

// syncPolicy says when appended records are flushed to disk.
type syncPolicy struct {
	always   bool
	interval time.Duration // 0 with always false: never
}

func parseSyncPolicy(s string) (syncPolicy, error) {
	switch s {
	case "always":
		return syncPolicy{always: true}, nil
	case "never":
		return syncPolicy{}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return syncPolicy{}, fmt.Errorf("%q is not always, never or a positive duration", s)
	}
	return syncPolicy{interval: d}, nil
}

// auditLog appends records to a file and keeps the latest, as their JSON
// lines, in a ring (audit_ring.go); a query, which is rare, decodes them.
type auditLog struct {
	mu       sync.Mutex
	file     *os.File
	policy   syncPolicy
	lastSync time.Time
	clock    func() time.Time
	ring     *lineRing
	failed   error // last write error, for /readyz
	dirty    bool  // written since the last sync
	stop     chan struct{}
}

// openAuditLog opens (creating 0600, and its directory 0700) the JSONL file.
func openAuditLog(path, sync string, clock func() time.Time) (*auditLog, error) {
	policy, err := parseSyncPolicy(sync)
	if err != nil {
		return nil, fmt.Errorf("audit.sync: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create audit directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit file %s: %w", path, err)
	}
	a := &auditLog{file: f, policy: policy, clock: clock, lastSync: clock(), ring: newLineRing(auditRingBytes, auditRingSize), stop: make(chan struct{})}
	if policy.interval > 0 {
		go a.syncLoop(policy.interval)
	}
	return a, nil
}

// syncLoop syncs records left unsynced by a quiet period, so with an
// interval policy no record stays off disk much longer than the interval.
func (a *auditLog) syncLoop(interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-ticker.C:
			a.mu.Lock()
			if a.file != nil && a.dirty {
				if err := a.file.Sync(); err != nil {
					a.failed = fmt.Errorf("sync audit file: %w", err)
				} else {
					a.dirty = false
					a.lastSync = a.clock()
				}
			}
			a.mu.Unlock()
		}
	}
}

// Write appends one record. An error means the record is not durably in the
// file; the caller decides whether to fail closed.
func (a *auditLog) Write(rec AuditRecord) error {
	line, err := rec.appendJSON(make([]byte, 0, 512))
	if err != nil {
		return fmt.Errorf("encode audit record: %w", err)
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ring.add(line)
	if a.file == nil {
		a.failed = errors.New("audit log closed")
		return a.failed
	}
	if _, err := a.file.Write(line); err != nil {
		a.failed = fmt.Errorf("append audit record: %w", err)
		return a.failed
	}
	if err := a.maybeSync(); err != nil {
		a.failed = err
		return err
	}
	a.failed = nil
	return nil
}

func (a *auditLog) maybeSync() error {
	a.dirty = true
	now := a.clock()
	if a.policy.always || (a.policy.interval > 0 && now.Sub(a.lastSync) >= a.policy.interval) {
		a.lastSync = now
		if err := a.file.Sync(); err != nil {
			return fmt.Errorf("sync audit file: %w", err)
		}
		a.dirty = false
	}
	return nil
}

// Healthy reports the last write error, if any.
func (a *auditLog) Healthy() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failed
}

// auditQuery filters records for GET /audit-logs.
type auditQuery struct {
	User    string // subject or email
	Method  string
	Outcome string
	Since   time.Time
	Limit   int
}

// queryBatch is how many lines a query copies out of the ring per turn of
// the lock: a query holds up the requests being audited for one batch at a
// time, not for the whole ring.
const queryBatch = 256

// Query returns the newest records matching q, newest first. Lines are
// copied out of the ring in batches under the lock and decoded after it.
func (a *auditLog) Query(q auditQuery) []AuditRecord {
	out := []AuditRecord{}
	before := int64(math.MaxInt64)
	for len(out) < q.Limit {
		a.mu.Lock()
		lines, next := a.ring.olderThan(before, queryBatch)
		a.mu.Unlock()
		if len(lines) == 0 {
			break
		}
		before = next
		for _, line := range lines {
			if len(out) >= q.Limit {
				break
			}
			var rec AuditRecord
			if err := json.Unmarshal(line, &rec); err != nil {
				continue // cannot happen: every line was encoded from an AuditRecord
			}
			if q.matches(&rec) {
				out = append(out, rec)
			}
		}
	}
	return out
}

func (q *auditQuery) matches(r *AuditRecord) bool {
	if q.User != "" && r.Subject != q.User && r.Email != q.User {
		return false
	}
	if q.Method != "" && !slices.Contains(strings.Split(r.Method, ","), q.Method) {
		return false
	}
	if q.Outcome != "" && r.Outcome != q.Outcome {
		return false
	}
	return q.Since.IsZero() || !r.Time.Before(q.Since)
}

// Close syncs and closes the file.
func (a *auditLog) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.file == nil {
		return nil
	}
	close(a.stop)
	syncErr := a.file.Sync()
	closeErr := a.file.Close()
	a.file = nil
	return errors.Join(syncErr, closeErr)
}
