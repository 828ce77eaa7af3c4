package authserver

// This file exposes the test controls of control.go over HTTP under
// /control (only when mock.control_api is set), to loopback callers only:
// the controls can mint users, clients and faults.

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

func (s *Server) controlRoutes(r chi.Router) {
	r.Use(s.loopbackOnly)
	r.Post("/faults", s.controlQueueFault)
	r.Delete("/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	r.Post("/deny-next-login", func(w http.ResponseWriter, _ *http.Request) {
		s.DenyNextLogin()
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	r.Post("/rotate-key", func(w http.ResponseWriter, r *http.Request) {
		kid, err := s.RotateKey()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"kid": kid})
	})
	r.Post("/lifetimes", s.controlLifetimes)
	r.Post("/users", func(w http.ResponseWriter, r *http.Request) {
		var u User
		s.controlJSON(w, r, &u, func() error { return s.AddUser(u) })
	})
	r.Post("/clients", func(w http.ResponseWriter, r *http.Request) {
		var c ClientConfig
		s.controlJSON(w, r, &c, func() error { return s.AddClient(c) })
	})
	r.Delete("/clients/{client_id}", func(w http.ResponseWriter, r *http.Request) {
		s.controlResult(w, r, s.RemoveClient(chi.URLParam(r, "client_id")))
	})
	r.Post("/revoke-user/{subject}", func(w http.ResponseWriter, r *http.Request) {
		s.controlResult(w, r, s.RevokeUser(chi.URLParam(r, "subject")))
	})
	r.Get("/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	r.Post("/reset", func(w http.ResponseWriter, r *http.Request) {
		s.controlResult(w, r, s.Reset())
	})
}

// loopbackOnly refuses callers whose address is not loopback. A loopback
// address alone is not enough: a web page whose name was rebound to
// 127.0.0.1 (DNS rebinding) connects from loopback too, so the Host must
// be a loopback name or the issuer's host, and a browser's Origin, when
// sent, must be one of those as well.
func (s *Server) loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !ip.IsLoopback() || !s.trustedHost(r.Host) || !s.trustedOrigin(r.Header.Get("Origin")) {
			writeJSON(w, http.StatusForbidden, errorBody{Error: ErrAccessDenied, ErrorDescription: errNotLoopback.Error()})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// trustedHost accepts a loopback host or the issuer's host (with any port).
func (s *Server) trustedHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if isLoopbackHost(host) {
		return true
	}
	u, err := url.Parse(s.issuer)
	return err == nil && strings.EqualFold(u.Hostname(), host)
}

func (s *Server) trustedOrigin(origin string) bool {
	if origin == "" {
		return true // not a browser, or a same-origin GET
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && s.trustedHost(u.Host)
}

func (s *Server) controlQueueFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	s.controlJSON(w, r, &f, func() error { return s.QueueFault(f) })
}

type lifetimesBody struct {
	AccessTokenTTL  string `json:"access_token_ttl"`
	RefreshTokenTTL string `json:"refresh_token_ttl"`
	IDTokenTTL      string `json:"id_token_ttl"`
	CodeTTL         string `json:"code_ttl"`
}

func (s *Server) controlLifetimes(w http.ResponseWriter, r *http.Request) {
	var b lifetimesBody
	s.controlJSON(w, r, &b, func() error {
		var l Lifetimes
		for _, f := range []struct {
			raw string
			dst *time.Duration
		}{{b.AccessTokenTTL, &l.AccessTokenTTL}, {b.RefreshTokenTTL, &l.RefreshTokenTTL}, {b.IDTokenTTL, &l.IDTokenTTL}, {b.CodeTTL, &l.CodeTTL}} {
			if f.raw == "" {
				continue
			}
			d, err := time.ParseDuration(f.raw)
			if err != nil || d <= 0 {
				return errInvalidRequest("lifetimes must be positive durations like 2s")
			}
			*f.dst = d
		}
		return s.SetLifetimes(l)
	})
}

// controlJSON decodes a strict JSON body into v, then runs apply.
func (s *Server) controlJSON(w http.ResponseWriter, r *http.Request, v any, apply func() error) {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		s.writeError(w, r, errInvalidRequest("body must be one JSON object with known fields"))
		return
	}
	s.controlResult(w, r, apply())
}

func (s *Server) controlResult(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
