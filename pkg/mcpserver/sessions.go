package mcpserver

// This file bounds the stateful Streamable HTTP sessions the SDK keeps: at
// most maxSessions in all, and at most server.max_sessions_per_user for any
// one subject, so that one user opening sessions in a loop cannot take every
// session from the others. Both caps are checked where the SDK creates a
// session: a POST without Mcp-Session-Id (normally initialize).

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxSessions bounds the stateful sessions the SDK keeps (idle ones also
// expire after SessionTimeout), so authenticated clients opening sessions in
// a loop cannot grow the session map without limit.
const maxSessions = 10000

// sessionsPerSubject counts the sessions each subject holds: reserved (a
// request that may create one is in flight) or open (the SDK created one
// for it). Open sessions are remembered by id and forgotten lazily, once the
// SDK no longer has them: when a subject is at its cap, and when more ids
// are remembered than sessions can be open. The SDK has no hook for a
// session's end, and waiting on each session instead took a goroutine per
// session, whose stack the collector walked in every cycle (under
// cachegrind, a few thousand instructions a call with four sessions; see
// docs/PERFORMANCE.md, "Auth overhead"). Its maps hold only subjects with a
// session, and at most maxIDs ids.
//
// The SDK is asked which sessions are still open without holding mu (it
// copies its session list), so a subject at its cap slows no one else's
// session creation; a subject whose every slot is a request in flight is
// refused without asking.
type sessionsPerSubject struct {
	mu        sync.Mutex
	max       int
	maxIDs    int                                // ids remembered before all are checked
	stillOpen func(ids []string) map[string]bool // which of ids the SDK still has open
	reserved  map[string]int                     // subject -> requests in flight
	open      map[string]map[string]struct{}     // subject -> ids of its sessions
	ids       int                                // ids in open, all subjects
	sweeping  bool                               // a check of every id is under way
}

// sessionRef names one remembered session.
type sessionRef struct{ subject, id string }

// newSessionsPerSubject allows max sessions a subject and remembers up to
// maxIDs ids; stillOpen tells which of some ids the SDK still has open.
func newSessionsPerSubject(max, maxIDs int, stillOpen func(ids []string) map[string]bool) *sessionsPerSubject {
	return &sessionsPerSubject{max: max, maxIDs: maxIDs, stillOpen: stillOpen,
		reserved: map[string]int{}, open: map[string]map[string]struct{}{}}
}

// acquire reserves a session for subject, or reports false when subject
// already holds max. The reservation ends with opened.
func (p *sessionsPerSubject) acquire(subject string) bool {
	if p.tryReserve(subject) {
		return true
	}
	refs := p.refs(subject)
	if len(refs) == 0 {
		return false // every slot is a request in flight
	}
	p.forgetClosed(refs)
	return p.tryReserve(subject)
}

func (p *sessionsPerSubject) tryReserve(subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.heldLocked(subject) >= p.max {
		return false
	}
	p.reserved[subject]++
	return true
}

// opened ends one of subject's reservations: id is the session its request
// created, or "" when none stays open.
func (p *sessionsPerSubject) opened(subject, id string) {
	if p.remember(subject, id) {
		// Checking every id is paid for by as many openings as it
		// forgets: maxIDs is at least twice the sessions open at once.
		p.forgetClosed(p.refs(""))
		p.mu.Lock()
		p.sweeping = false
		p.mu.Unlock()
	}
}

// remember ends the reservation and records id; it reports whether the
// caller should check every id (more than maxIDs are remembered, and no
// other check is under way).
func (p *sessionsPerSubject) remember(subject, id string) (sweep bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reserved[subject] <= 1 {
		delete(p.reserved, subject)
	} else {
		p.reserved[subject]--
	}
	if id == "" {
		return false
	}
	set := p.open[subject]
	if set == nil {
		set = map[string]struct{}{}
		p.open[subject] = set
	}
	if _, dup := set[id]; !dup {
		set[id] = struct{}{}
		p.ids++
	}
	if p.ids > p.maxIDs && !p.sweeping {
		p.sweeping = true
		return true
	}
	return false
}

// held reports how many sessions subject holds, reserved or still open
// (forgetting the closed ones first).
func (p *sessionsPerSubject) held(subject string) int {
	p.forgetClosed(p.refs(subject))
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.heldLocked(subject)
}

func (p *sessionsPerSubject) heldLocked(subject string) int {
	return p.reserved[subject] + len(p.open[subject])
}

// refs lists the sessions remembered for subject (every subject's, for "").
func (p *sessionsPerSubject) refs(subject string) []sessionRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []sessionRef
	for sub, set := range p.open {
		if subject != "" && sub != subject {
			continue
		}
		for id := range set {
			out = append(out, sessionRef{sub, id})
		}
	}
	return out
}

// forgetClosed asks the SDK which of refs are still open, without holding
// mu, and forgets the others. Ids are unique: a session the SDK has closed
// does not come back, so an answer that is a moment old is still right.
func (p *sessionsPerSubject) forgetClosed(refs []sessionRef) {
	if len(refs) == 0 {
		return
	}
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.id
	}
	open := p.stillOpen(ids)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range refs {
		set := p.open[r.subject]
		if _, ok := set[r.id]; !ok || open[r.id] {
			continue
		}
		delete(set, r.id)
		p.ids--
		if len(set) == 0 {
			delete(p.open, r.subject)
		}
	}
}

// limitSessions admits a request that would create a session (a stateful
// POST without Mcp-Session-Id) only under both caps: 503 once maxSessions
// are open, 429 once the caller's subject holds max_sessions_per_user.
func (s *Server) limitSessions(srv *mcp.Server, next http.Handler) http.Handler {
	if s.cfg.Server.Stateless {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Mcp-Session-Id") != "" {
			next.ServeHTTP(w, r)
			return
		}
		st := stateFrom(r.Context())
		if s.sessionCount(srv) >= s.maxSessions {
			st.outcome, st.reason = OutcomeError, "too many sessions"
			w.Header().Set("Retry-After", "30")
			writeJSONRPCError(w, http.StatusServiceUnavailable, -32000, "too many open sessions; try again later")
			return
		}
		if st.identity == nil { // auth.enabled = false: no subject to count
			next.ServeHTTP(w, r)
			return
		}
		subject := st.identity.Subject
		if !s.userSessions.acquire(subject) {
			st.outcome, st.reason = OutcomeDenied, "too many sessions for this user"
			w.Header().Set("Retry-After", "30")
			writeJSONRPCError(w, http.StatusTooManyRequests, -32000,
				fmt.Sprintf("too many open sessions for this user (at most %d): end one with DELETE /mcp, or try again later", s.cfg.Server.MaxSessionsPerUser))
			return
		}
		// Deferred: a panic below must not keep the reservation forever.
		defer func() { s.userSessions.opened(subject, createdSession(srv, w.Header().Get("Mcp-Session-Id"))) }()
		next.ServeHTTP(w, r)
	})
}

// createdSession returns sessionID if the SDK has that session open and
// initialized, or "". A session not initialized by this request is being
// closed by the SDK as the request ends: its slot is given back at once, so
// the next request of the same subject sees it free.
func createdSession(srv *mcp.Server, sessionID string) string {
	if sessionID == "" {
		return ""
	}
	for ss := range srv.Sessions() {
		if ss.ID() == sessionID && ss.InitializeParams() != nil {
			return sessionID
		}
	}
	return ""
}

// openAmong reports which of ids srv still has open.
func openAmong(srv *mcp.Server, ids []string) map[string]bool {
	open := make(map[string]bool, len(ids))
	for _, id := range ids {
		open[id] = false
	}
	for ss := range srv.Sessions() {
		if _, ok := open[ss.ID()]; ok {
			open[ss.ID()] = true
		}
	}
	return open
}

func (s *Server) sessionCount(srv *mcp.Server) int {
	n := 0
	for range srv.Sessions() {
		n++
	}
	return n
}
