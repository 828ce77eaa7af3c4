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

// sessionsPerSubject counts the sessions each subject holds, reserved or
// open. Its map only holds subjects with at least one session, so it is
// bounded by maxSessions plus the requests in flight.
type sessionsPerSubject struct {
	mu    sync.Mutex
	max   int
	count map[string]int
}

func newSessionsPerSubject(max int) *sessionsPerSubject {
	return &sessionsPerSubject{max: max, count: map[string]int{}}
}

// acquire reserves a session for subject, or reports false when subject
// already holds max.
func (p *sessionsPerSubject) acquire(subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count[subject] >= p.max {
		return false
	}
	p.count[subject]++
	return true
}

// release gives back one of subject's sessions.
func (p *sessionsPerSubject) release(subject string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count[subject] <= 1 {
		delete(p.count, subject)
		return
	}
	p.count[subject]--
}

// held reports how many sessions subject holds.
func (p *sessionsPerSubject) held(subject string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count[subject]
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
		next.ServeHTTP(w, r)
		s.holdUntilClosed(srv, w.Header().Get("Mcp-Session-Id"), subject)
	})
}

// holdUntilClosed keeps subject's reservation while the session the SDK
// created for it is open, and releases it when the session closes (DELETE
// or SessionTimeout expiry). One goroutine waits per open session, at most
// maxSessions. A session that was not initialized by this request is being
// closed by the SDK as the request ends: its slot is released at once, so
// the next request of the same subject sees it free.
func (s *Server) holdUntilClosed(srv *mcp.Server, sessionID, subject string) {
	if sessionID != "" {
		for ss := range srv.Sessions() {
			if ss.ID() == sessionID && ss.InitializeParams() != nil {
				go func() {
					_ = ss.Wait()
					s.userSessions.release(subject)
				}()
				return
			}
		}
	}
	s.userSessions.release(subject) // no session was created, or it is closed already
}

func (s *Server) sessionCount(srv *mcp.Server) int {
	n := 0
	for range srv.Sessions() {
		n++
	}
	return n
}
