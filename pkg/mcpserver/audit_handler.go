package mcpserver

// This file serves GET /audit-logs: the audit records as JSON, filtered by
// user (subject or email), method, outcome, since (RFC 3339) and limit. It
// needs a token with scope mcp:audit (RFC 6750 insufficient_scope
// otherwise).

import (
	"net/http"
	"strconv"
	"time"
)

const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

func (s *Server) auditLogsHandler() http.HandlerFunc {
	need := []string{ScopeAudit}
	return func(w http.ResponseWriter, r *http.Request) {
		// Records hold subjects, emails, jtis and addresses: no shared or
		// browser cache may keep them (RFC 9111 §5.2.2.5; Pragma for
		// HTTP/1.0 caches, as RFC 6749 §5.1 does for tokens).
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		if s.cfg.Auth.Enabled {
			id := s.authenticate(w, r, need)
			if id == nil {
				return
			}
			if missing := missingScopes(id.Scopes, need); len(missing) > 0 {
				s.refuse(w, r, http.StatusForbidden, "insufficient_scope", "the audit log needs "+ScopeAudit, need)
				return
			}
		}
		q, err := parseAuditQuery(r)
		if err != nil {
			stateFrom(r.Context()).reason = err.Error()
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		records := s.audit.Query(q)
		writeJSON(w, http.StatusOK, map[string]any{"records": records, "count": len(records)})
	}
}

func parseAuditQuery(r *http.Request) (auditQuery, error) {
	v := r.URL.Query()
	q := auditQuery{User: v.Get("user"), Method: v.Get("method"), Outcome: v.Get("outcome"), Limit: defaultAuditLimit}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return q, errInvalidParam("since", "an RFC 3339 time")
		}
		q.Since = t
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditLimit {
			return q, errInvalidParam("limit", "an integer from 1 to "+strconv.Itoa(maxAuditLimit))
		}
		q.Limit = n
	}
	switch q.Outcome {
	case "", OutcomeAllowed, OutcomeDenied, OutcomeError:
	default:
		return q, errInvalidParam("outcome", "allowed, denied or error")
	}
	return q, nil
}

type paramError struct{ name, want string }

func (e *paramError) Error() string { return e.name + " must be " + e.want }

func errInvalidParam(name, want string) error { return &paramError{name, want} }
