package mcpserver

// This file writes each request's audit record from the HTTP pipeline: the
// record of a request (allowed or refused) is on disk before its response
// starts, and with audit.fail_closed a request whose record cannot be
// written gets a 500 instead of its answer. The log itself is audit.go.

import (
	"context"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/requestid"
)

// auditMiddleware gives each request its state and writes its audit record
// at the moment the response starts, so the record is on disk before the
// client sees any answer.
func (s *Server) auditMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// requestid.Middleware (outermost on the router) has set the id and
		// the X-Request-Id response header; the fallback covers a handler
		// mounted without it.
		id := requestid.FromContext(r.Context())
		if id == "" {
			id = requestid.New()
			w.Header().Set(requestid.Header, id)
		}
		st := &requestState{id: id, start: time.Now()}
		aw := &auditWriter{ResponseWriter: w, s: s, r: r, st: st}
		next.ServeHTTP(aw, r.WithContext(context.WithValue(r.Context(), stateKey, st)))
		if !aw.recorded {
			aw.WriteHeader(http.StatusOK)
		}
	})
}

// auditWriter records the audit entry on the first WriteHeader, Write or
// Flush. If the record cannot be written and audit.fail_closed is set, the
// response is replaced by a 500 before anything reached the client.
type auditWriter struct {
	http.ResponseWriter
	s        *Server
	r        *http.Request
	st       *requestState
	recorded bool
	blocked  bool
}

// WriteHeader writes the audit record, then the status.
func (w *auditWriter) WriteHeader(code int) {
	if w.blocked {
		return
	}
	if !w.recorded {
		w.recorded = true
		if err := w.s.recordAudit(w.r, w.st, code, w.Header()); err != nil && w.s.cfg.Audit.FailClosed {
			w.blocked = true
			w.s.logger.Error("audit record not written; refusing request (audit.fail_closed)", "request_id", w.st.id, "error", err)
			writeJSONRPCError(w.ResponseWriter, http.StatusInternalServerError, -32603, "audit log unavailable")
			return
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write sends the body, recording the audit entry first if no status was
// written yet.
func (w *auditWriter) Write(b []byte) (int, error) {
	if !w.recorded {
		w.WriteHeader(http.StatusOK)
	}
	if w.blocked {
		return 0, errors.New("response suppressed: audit log unavailable")
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets SSE streams through; it is found before Unwrap by
// http.ResponseController.
func (w *auditWriter) Flush() {
	if !w.recorded {
		w.WriteHeader(http.StatusOK)
	}
	if w.blocked {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController (for
// deadlines); the record is already written by then.
func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recordAudit builds and writes the audit record of one request.
func (s *Server) recordAudit(r *http.Request, st *requestState, status int, respHeader http.Header) error {
	rec := AuditRecord{
		Time: s.clock().UTC(), RequestID: st.id, HTTPMethod: r.Method, Path: r.URL.Path,
		Status: status, Error: st.reason, RemoteAddr: r.RemoteAddr,
		DurationMS: float64(time.Since(st.start).Microseconds()) / 1000,
		SessionID:  r.Header.Get("Mcp-Session-Id"),
	}
	if rec.SessionID == "" {
		rec.SessionID = respHeader.Get("Mcp-Session-Id")
	}
	if id := st.identity; id != nil {
		rec.Subject, rec.Email, rec.ClientID, rec.JTI = id.Subject, id.Email, id.ClientID, id.JTI
	}
	if st.rpc != nil {
		rec.Method = st.rpc.methods()
		rec.Tool, rec.Resource = st.rpc.targets()
	} else if r.URL.Path != "/mcp" {
		rec.Method = r.Method + " " + r.URL.Path
	}
	rec.Outcome = st.outcome
	if rec.Outcome == "" {
		switch {
		case status < 400:
			rec.Outcome = OutcomeAllowed
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			rec.Outcome = OutcomeDenied
		default:
			rec.Outcome = OutcomeError
		}
	}
	rec.clipFields()
	if err := s.audit.Write(rec); err != nil {
		s.metrics.AuditFailures.Inc()
		return err
	}
	s.metrics.AuditWrites.Inc()
	return nil
}

// maxAuditField bounds each field of a record that a client chooses (tool
// and resource names, methods, path, session id, the refusal reason, which
// may quote them). Without it, a few unauthenticated requests with
// megabyte-long tool names would fill the audit file and push every other
// record out of the 4 MiB ring that GET /audit-logs reads.
const maxAuditField = 256

// clipFields cuts the client-chosen fields to maxAuditField bytes (on a
// UTF-8 boundary) and marks the cut.
func (r *AuditRecord) clipFields() {
	for _, f := range []*string{&r.RequestID, &r.SessionID, &r.Path, &r.Method, &r.Tool, &r.Resource, &r.Error, &r.RemoteAddr} {
		*f = clipField(*f)
	}
}

func clipField(s string) string {
	if len(s) <= maxAuditField {
		return s
	}
	i := maxAuditField
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…(truncated)"
}
