package authserver

// This file implements the login and consent page of the authorization
// endpoint (RFC 6749 §4.1.1: "the authorization server authenticates the
// resource owner and obtains an authorization decision"). The page is
// server-rendered, cannot be framed (clickjacking, RFC 6749 §10.13) and its
// form carries a CSRF token that must match both the pending request and a
// SameSite cookie (RFC 6749 §10.12), so another site cannot approve for the
// user.

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

//go:embed templates/consent.html
var templateFS embed.FS

var consentPage = template.Must(template.ParseFS(templateFS, "templates/consent.html"))

const (
	csrfCookie         = "mock_as_csrf"
	pendingTTL         = 10 * time.Minute
	maxPending         = 1000
	maxCustomClaims    = 4096
	customUserSentinel = "-custom-"
)

// pendingAuthorization is a validated request waiting for the user.
type pendingAuthorization struct {
	az      authorization
	csrf    string
	expires time.Time
}

// pendingStore keeps pending authorizations, capped and expiring, so
// unauthenticated GET /authorize calls cannot grow memory without bound.
type pendingStore struct {
	mu      sync.Mutex
	now     func() time.Time
	pending map[string]pendingAuthorization
}

func newPendingStore(now func() time.Time) *pendingStore {
	return &pendingStore{now: now, pending: map[string]pendingAuthorization{}}
}

func (ps *pendingStore) add(az authorization) (id, csrf string, err error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := ps.now()
	if len(ps.pending) >= maxPending {
		for k, p := range ps.pending {
			if now.After(p.expires) {
				delete(ps.pending, k)
			}
		}
	}
	if len(ps.pending) >= maxPending {
		return "", "", newError(ErrTemporarilyUnavailable, "too many pending authorizations")
	}
	id, csrf = randomID(), randomToken()
	ps.pending[id] = pendingAuthorization{az: az, csrf: csrf, expires: now.Add(pendingTTL)}
	return id, csrf, nil
}

// take removes and returns a pending authorization: a decision is single-use.
func (ps *pendingStore) take(id string) (pendingAuthorization, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.pending[id]
	delete(ps.pending, id)
	if !ok || ps.now().After(p.expires) {
		return pendingAuthorization{}, false
	}
	return p, true
}

func (ps *pendingStore) reset() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.pending = map[string]pendingAuthorization{}
}

type consentView struct {
	ClientName   string
	ClientID     string
	RedirectHost string
	Scopes       []string
	Resource     string
	Users        []User
	DefaultUser  string
	RequestID    string
	CSRF         string
	Action       string
	Error        string
}

// showConsent renders the login and consent page for a validated request.
func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, az authorization) {
	id, csrf, err := s.consent.add(az)
	if err != nil {
		s.redirectError(w, r, az.RedirectURI, az.Request.State, err)
		return
	}
	name := az.Client.Name
	if name == "" {
		name = az.Client.ID
	}
	host := az.RedirectURI
	if u, err := url.Parse(az.RedirectURI); err == nil {
		host = u.Host
	}
	view := consentView{
		ClientName: name, ClientID: az.Client.ID, RedirectHost: host,
		Scopes: splitScope(az.Scope), Resource: az.Request.Resource,
		Users: s.usersSorted(), DefaultUser: s.cfg.Mock.DefaultUser,
		RequestID: id, CSRF: csrf, Action: s.issuerPath() + pathDecision,
	}
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookie, Value: csrf, Path: s.issuerPath() + pathAuthorize,
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: strings.HasPrefix(s.issuer, "https://"), MaxAge: int(pendingTTL / time.Second),
	})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := consentPage.Execute(w, view); err != nil {
		s.log.ErrorContext(r.Context(), "render consent page", "err", err)
	}
}

// handleDecision receives the consent form: Approve issues a code as the
// chosen user, Deny answers access_denied (RFC 6749 §4.1.2.1).
func (s *Server) handleDecision(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		s.writeErrorPage(w, err)
		return
	}
	p, ok := s.consent.take(form.get("request_id"))
	if !ok {
		s.writeErrorPage(w, errInvalidRequest("unknown or expired authorization request"))
		return
	}
	if !csrfMatches(r, form.get("csrf_token"), p.csrf) {
		s.writeErrorPage(w, errInvalidRequest("CSRF check failed").withReason(reasonCSRF))
		return
	}
	az := p.az
	if form.get("action") != "approve" || s.takeDenyNext() {
		s.redirectError(w, r, az.RedirectURI, az.Request.State, newError(ErrAccessDenied, "the user denied the request"))
		return
	}
	subject, claims, err := s.chosenUser(form)
	if err != nil {
		s.redirectError(w, r, az.RedirectURI, az.Request.State, err)
		return
	}
	s.approve(w, r, az, subject, claims)
}

func csrfMatches(r *http.Request, formToken, want string) bool {
	cookie, err := r.Cookie(csrfCookie)
	if err != nil || formToken == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(formToken), []byte(want)) == 1 &&
		subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(want)) == 1
}

// chosenUser returns the subject and claims picked on the consent page: a
// configured user, or a typed subject with extra claims as a JSON object.
func (s *Server) chosenUser(form params) (string, map[string]any, error) {
	choice := form.get("user")
	if choice != customUserSentinel {
		u, ok := s.user(choice)
		if !ok {
			return "", nil, errInvalidRequest("unknown user")
		}
		return u.Subject, userClaims(u), nil
	}
	subject := strings.TrimSpace(form.get("custom_subject"))
	if subject == "" || len(subject) > 255 {
		return "", nil, errInvalidRequest("custom subject must be 1 to 255 characters")
	}
	claims, err := parseExtraClaims(form.get("custom_claims"))
	if err != nil {
		return "", nil, err
	}
	return subject, claims, nil
}

// parseExtraClaims parses the typed claims: a JSON object, size-limited,
// which may not set the claims the server owns.
func parseExtraClaims(raw string) (map[string]any, error) {
	claims := map[string]any{}
	if strings.TrimSpace(raw) == "" {
		return claims, nil
	}
	if len(raw) > maxCustomClaims {
		return nil, errInvalidRequest("extra claims too large")
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	if err := dec.Decode(&claims); err != nil || dec.More() {
		return nil, errInvalidRequest("extra claims must be a JSON object")
	}
	if claims == nil {
		return nil, errInvalidRequest("extra claims must be a JSON object")
	}
	for k := range claims {
		if slices.Contains(reservedClaims, k) {
			return nil, errInvalidRequest("extra claims may not set " + k)
		}
	}
	return claims, nil
}
