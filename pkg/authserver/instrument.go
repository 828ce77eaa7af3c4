package authserver

// This file wraps every OAuth endpoint for the mock's test controls: it
// counts requests, keeps the last few per endpoint with secrets masked, and
// injects the faults queued with QueueFault (an error status, a delay, a
// malformed body, a dropped connection).

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Endpoints that can be instrumented and faulted.
var faultEndpoints = []string{"metadata", "authorize", "token", "jwks", "register", "introspect", "revoke", "userinfo"}

const (
	lastRequestsKept = 20
	maxFaultDelay    = 60 * time.Second
	maxQueuedFaults  = 100
)

// Fault modes.
const (
	FaultStatus    = "status"
	FaultDelay     = "delay"
	FaultMalformed = "malformed"
	FaultDrop      = "drop"
)

// Fault describes how the next responses of an endpoint fail.
type Fault struct {
	// Endpoint is one of metadata authorize token jwks register introspect
	// revoke userinfo.
	Endpoint string `json:"endpoint"`
	// Count is how many requests the fault applies to; -1 until cleared.
	Count            int    `json:"count"`
	Status           int    `json:"status"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	DelayMS          int    `json:"delay_ms"`
	// Mode is status, delay, malformed or drop.
	Mode string `json:"mode"`
}

type faultQueue struct {
	mu     sync.Mutex
	queued map[string][]*Fault
}

func newFaultQueue() *faultQueue { return &faultQueue{queued: map[string][]*Fault{}} }

func (q *faultQueue) add(f Fault) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queued[f.Endpoint]) >= maxQueuedFaults {
		return errInvalidRequest("too many queued faults for " + f.Endpoint)
	}
	q.queued[f.Endpoint] = append(q.queued[f.Endpoint], &f)
	return nil
}

// next takes one use of the first fault queued for endpoint.
func (q *faultQueue) next(endpoint string) (Fault, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	list := q.queued[endpoint]
	if len(list) == 0 {
		return Fault{}, false
	}
	f := list[0]
	if f.Count > 0 {
		f.Count--
		if f.Count == 0 {
			q.queued[endpoint] = list[1:]
		}
	}
	return *f, true
}

func (q *faultQueue) clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queued = map[string][]*Fault{}
}

// RequestRecord is one request as the control API reports it.
type RequestRecord struct {
	Time   time.Time         `json:"time"`
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Query  map[string]string `json:"query,omitempty"`
	Form   map[string]string `json:"form,omitempty"`
	// Auth is the Authorization scheme only (e.g. "Basic ****").
	Auth   string `json:"auth,omitempty"`
	Status int    `json:"status"`
}

// Stats are the counters the control API reports.
type Stats struct {
	Requests     map[string]int             `json:"requests"`
	Grants       map[string]int             `json:"grants"`
	LastRequests map[string][]RequestRecord `json:"last_requests"`
}

// requestSample is one request as the recorder keeps it: the parsed
// parameters by reference (nothing mutates params once parsed) and the
// Authorization scheme, masked into a RequestRecord only when Stats asks,
// so recording costs a request no copy of its form.
type requestSample struct {
	time         time.Time
	method, path string
	query, form  params
	authScheme   string
	status       int
}

func (rs requestSample) record() RequestRecord {
	rec := RequestRecord{
		Time: rs.time, Method: rs.method, Path: rs.path, Status: rs.status,
		Query: maskParams(rs.query), Form: maskParams(rs.form),
	}
	if rs.authScheme != "" {
		rec.Auth = rs.authScheme + " ****"
	}
	return rec
}

// statsRecorder holds what Stats reports. The counters are always kept
// (one increment per request); the last requests only when keepSamples
// (mock.control_api is on): nobody can read them otherwise.
type statsRecorder struct {
	keepSamples bool

	mu       sync.Mutex
	requests map[string]int
	grants   map[string]int
	samples  map[string][]requestSample
}

func newStatsRecorder(keepSamples bool) *statsRecorder {
	r := &statsRecorder{keepSamples: keepSamples}
	r.reset()
	return r
}

func (sr *statsRecorder) reset() {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.requests = map[string]int{}
	sr.grants = map[string]int{}
	sr.samples = map[string][]requestSample{}
}

func (sr *statsRecorder) countGrant(grant string) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.grants[grant]++
}

func (sr *statsRecorder) countRequest(endpoint string) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.requests[endpoint]++
}

// record counts a request and keeps it among its endpoint's last
// lastRequestsKept, in a ring of fixed size.
func (sr *statsRecorder) record(endpoint string, rs requestSample) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.requests[endpoint]++
	last := sr.samples[endpoint]
	if len(last) < lastRequestsKept {
		sr.samples[endpoint] = append(last, rs)
		return
	}
	copy(last, last[1:])
	last[len(last)-1] = rs
}

func (sr *statsRecorder) snapshot() Stats {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	out := Stats{Requests: map[string]int{}, Grants: map[string]int{}, LastRequests: map[string][]RequestRecord{}}
	for k, v := range sr.requests {
		out.Requests[k] = v
	}
	for k, v := range sr.grants {
		out.Grants[k] = v
	}
	for k, v := range sr.samples {
		recs := make([]RequestRecord, len(v))
		for i, rs := range v {
			recs[i] = rs.record()
		}
		out.LastRequests[k] = recs
	}
	return out
}

// secretParams are masked in recorded requests.
var secretParams = map[string]bool{
	"client_secret": true, "code": true, "code_verifier": true, "refresh_token": true,
	"token": true, "access_token": true, "id_token": true, "csrf_token": true,
	"assertion": true, "client_assertion": true, "password": true,
}

func maskParams(p params) map[string]string {
	if len(p) == 0 {
		return nil
	}
	out := make(map[string]string, len(p))
	for k, v := range p {
		if secretParams[k] {
			v = "****"
		}
		out[k] = v
	}
	return out
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// instrument returns the middleware for one named endpoint. The body is
// buffered (within the size limit) and parsed once, for the handler and the
// recorder. Recording a sample is skipped unless the control API is on.
func (s *Server) instrument(endpoint string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var rs requestSample
			keep := s.stats.keepSamples
			if keep {
				rs = requestSample{time: s.now().UTC(), method: r.Method, path: r.URL.Path, authScheme: authScheme(r)}
			}
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				if keep {
					rs.status = sw.status
					s.stats.record(endpoint, rs)
					return
				}
				s.stats.countRequest(endpoint)
			}()
			body, err := io.ReadAll(r.Body)
			if err != nil {
				s.writeError(sw, r, bodyError(err))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			pr := &parsedRequest{query: parse(r.URL.RawQuery)}
			if pr.query.err == nil {
				rs.query = pr.query.p
			}
			if isFormContent(r) {
				form := parse(string(body))
				pr.form = &form
				if form.err == nil {
					rs.form = form.p
				}
			}
			r = withParsedRequest(r, pr)
			if !s.applyFault(sw, r, endpoint) {
				next.ServeHTTP(sw, r)
			}
		})
	}
}

func isFormContent(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// authScheme is the Authorization header's scheme ("Basic", "Bearer"),
// the only part of it ever recorded.
func authScheme(r *http.Request) string {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return scheme
}

// applyFault serves the next queued fault for endpoint, if any; it reports
// whether the response was handled (false: serve normally).
func (s *Server) applyFault(w *statusWriter, r *http.Request, endpoint string) bool {
	f, ok := s.faults.next(endpoint)
	if !ok {
		return false
	}
	s.log.InfoContext(r.Context(), "injecting fault", "endpoint", endpoint, "mode", f.Mode, "status", f.Status)
	switch f.Mode {
	case FaultDelay:
		t := time.NewTimer(time.Duration(f.DelayMS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		}
		return false
	case FaultMalformed:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"this is": not json`))
		return true
	case FaultDrop:
		dropConnection(w.ResponseWriter)
		w.status = 0
		return true
	default:
		if f.Status == http.StatusUnauthorized {
			// An injected 401 is still a well-formed one (RFC 9110 §15.5.2).
			w.Header().Set("WWW-Authenticate", s.challenge(r, f.Error))
		}
		writeNoStoreJSON(w, f.Status, errorBody{Error: f.Error, ErrorDescription: f.ErrorDescription})
		return true
	}
}

// dropConnection closes the connection without a response. Hijacking works
// on HTTP/1; elsewhere ErrAbortHandler makes net/http abort the stream.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
