package authserver

// This file holds the mock's test controls as plain Go methods, in the
// style of mockoidc's QueueError/QueueUser: tests that embed the server
// call them directly, and control_api.go exposes them over HTTP.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// rotationLeeway keeps a rotated-out key published a little past its last
// token's expiry, for resource servers that allow clock skew.
const rotationLeeway = time.Minute

// QueueFault makes the next f.Count responses of f.Endpoint fail as f says.
func (s *Server) QueueFault(f Fault) error {
	if !slices.Contains(faultEndpoints, f.Endpoint) {
		return errInvalidRequest(fmt.Sprintf("endpoint must be one of %v", faultEndpoints))
	}
	if f.Count == 0 {
		f.Count = 1
	}
	if f.Count < -1 {
		return errInvalidRequest("count must be >= 1 or -1")
	}
	if f.Mode == "" {
		f.Mode = FaultStatus
	}
	switch f.Mode {
	case FaultStatus:
		if f.Status < 400 || f.Status > 599 {
			return errInvalidRequest("status must be 400-599")
		}
		if f.Error == "" {
			f.Error = ErrServerError
		}
	case FaultDelay:
		if f.DelayMS < 0 || time.Duration(f.DelayMS)*time.Millisecond > maxFaultDelay {
			return errInvalidRequest("delay_ms must be 0-60000")
		}
	case FaultMalformed, FaultDrop:
	default:
		return errInvalidRequest("mode must be status, delay, malformed or drop")
	}
	return s.faults.add(f)
}

// ClearFaults drops every queued fault.
func (s *Server) ClearFaults() { s.faults.clear() }

// DenyNextLogin makes the next authorization end in access_denied.
func (s *Server) DenyNextLogin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denyNext++
}

func (s *Server) takeDenyNext() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.denyNext > 0 {
		s.denyNext--
		return true
	}
	return false
}

// RotateKey starts signing with a new key (new kid) and returns its kid.
// The old public key stays in the JWKS until its tokens have expired. The
// new key lives in memory only: keys.private_key_file is never overwritten.
func (s *Server) RotateKey() (string, error) {
	priv, err := generateKey(s.cfg.Keys.Algorithm)
	if err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	next, err := newSigningKey(priv, s.cfg.Keys.Algorithm)
	if err != nil {
		return "", err
	}
	lt := s.lifetimesNow()
	s.keys.rotate(next, s.now().Add(max(lt.AccessTokenTTL, lt.IDTokenTTL)+rotationLeeway))
	s.log.Info("signing key rotated", "kid", next.kid)
	return next.kid, nil
}

// Lifetimes changes token lifetimes at run time; zero fields stay as they are.
type Lifetimes struct {
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	IDTokenTTL      time.Duration
	CodeTTL         time.Duration
}

// SetLifetimes changes token lifetimes for tokens issued from now on.
func (s *Server) SetLifetimes(l Lifetimes) error {
	for _, d := range []time.Duration{l.AccessTokenTTL, l.RefreshTokenTTL, l.IDTokenTTL, l.CodeTTL} {
		if d < 0 {
			return errInvalidRequest("lifetimes must be positive")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	set(&s.lifetimes.AccessTokenTTL, l.AccessTokenTTL)
	set(&s.lifetimes.RefreshTokenTTL, l.RefreshTokenTTL)
	set(&s.lifetimes.IDTokenTTL, l.IDTokenTTL)
	set(&s.lifetimes.CodeTTL, l.CodeTTL)
	return nil
}

// maxUsers caps users added at run time.
const maxUsers = 10_000

// AddUser adds or replaces a mock user.
func (s *Server) AddUser(u User) error {
	if err := validateUser(u); err != nil {
		return errInvalidRequest(err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.users[u.Subject]; !exists && len(s.users) >= maxUsers {
		return errInvalidRequest("too many users")
	}
	s.users[u.Subject] = u
	return nil
}

// AddClient adds or replaces a client, validated like a configured one.
func (s *Server) AddClient(c ClientConfig) error {
	if err := validateClientConfig(c, s.cfg.Scopes); err != nil {
		return errInvalidRequest(err.Error())
	}
	if err := s.store.PutClient(context.Background(), clientFromConfig(c, s.now())); err != nil {
		return storeError("add client", err)
	}
	return nil
}

// RemoveClient forgets a client, as if the server lost its registration.
func (s *Server) RemoveClient(clientID string) error {
	return s.store.DeleteClient(context.Background(), clientID)
}

// RevokeUser revokes every refresh family and access token of a subject.
func (s *Server) RevokeUser(subject string) error {
	return s.store.RevokeSubject(context.Background(), subject)
}

// Stats returns request and grant counters and the last requests per
// endpoint, secrets masked. The last requests are kept only when
// mock.control_api is on: keeping them costs every request, and without
// the control API only Go callers could read them.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// Reset returns to the configured state: clients, users, tokens, faults,
// counters and lifetimes (the signing key is kept).
func (s *Server) Reset() error {
	ctx := context.Background()
	if err := s.store.Reset(ctx); err != nil {
		return fmt.Errorf("reset store: %w", err)
	}
	s.faults.clear()
	s.stats.reset()
	s.consent.reset()
	if err := s.seed(ctx); err != nil {
		return err
	}
	return nil
}

// errNotLoopback refuses control calls from other hosts.
var errNotLoopback = errors.New("control API is for loopback callers only")
