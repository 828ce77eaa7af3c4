package authserver

// This file holds the rules about clients shared by several endpoints:
// looking a client up (registered, or a client ID metadata document),
// redirect URI registration and matching (RFC 6749 §3.1.2, RFC 8252 §7.3),
// scopes (RFC 6749 §3.3) and resource indicators (RFC 8707 §2).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
)

// errUnknownClient is returned by lookupClient for a client that is neither
// registered nor a resolvable metadata document URL.
var errUnknownClient = errors.New("unknown client")

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func clientFromConfig(c ClientConfig, now time.Time) store.Client {
	out := store.Client{
		ID:           c.ClientID,
		Name:         c.ClientName,
		RedirectURIs: slices.Clone(c.RedirectURIs),
		GrantTypes:   slices.Clone(c.GrantTypes),
		Scopes:       slices.Clone(c.Scopes),
		AuthMethod:   c.TokenEndpointAuthMethod,
		IssuedAt:     now,
	}
	if c.ClientSecret != "" {
		out.SecretHash = hashSecret(c.ClientSecret)
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) {
		out.ResponseTypes = []string{"code"}
	}
	return out
}

// lookupClient finds a registered client or, when client_id is an https
// URL and CIMD is enabled, resolves its metadata document.
func (s *Server) lookupClient(ctx context.Context, id string) (store.Client, error) {
	if id == "" {
		return store.Client{}, errUnknownClient
	}
	c, err := s.store.GetClient(ctx, id)
	if err == nil {
		if c.Dynamic {
			s.touchClient(ctx, c.ID)
		}
		return c, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.Client{}, fmt.Errorf("load client: %w", err)
	}
	if s.cfg.CIMD.Enabled && isCIMDClientID(id) {
		c, err := s.cimd.resolve(ctx, id)
		if err != nil {
			s.log.InfoContext(ctx, "client metadata document refused", "client_id", id, "err", err)
			return store.Client{}, fmt.Errorf("%w: %v", errUnknownClient, err)
		}
		return c, nil
	}
	return store.Client{}, errUnknownClient
}

// touchClient records a use of a dynamically registered client, which keeps
// it from being swept as idle (registration.client_ttl). A failure to
// record is logged, not fatal: at worst the client is swept early and
// registers again.
func (s *Server) touchClient(ctx context.Context, id string) {
	if s.cfg.Registration.ClientTTL <= 0 {
		return
	}
	if err := s.store.TouchClient(ctx, id, s.now()); err != nil {
		s.log.WarnContext(ctx, "record client use", "client_id", id, "err", err)
	}
}

// sweepIdleClients deletes the dynamically registered clients idle for
// longer than registration.client_ttl (0: never) that hold no live
// refresh-token grant.
func (s *Server) sweepIdleClients(ctx context.Context) int {
	ttl := s.cfg.Registration.ClientTTL
	if ttl <= 0 {
		return 0
	}
	now := s.now()
	n, err := s.store.SweepIdleClients(ctx, now.Add(-ttl), now)
	if err != nil {
		s.log.WarnContext(ctx, "sweep idle clients", "err", err)
		return 0
	}
	if n > 0 {
		s.log.InfoContext(ctx, "idle dynamically registered clients removed", "count", n, "client_ttl", ttl)
	}
	return n
}

func isConfidential(c store.Client) bool { return c.AuthMethod != AuthNone }

// validateRedirectURI enforces what may be registered: an absolute https
// URI, or http on a loopback host (RFC 8252 §7.3), never a fragment
// (RFC 6749 §3.1.2), never javascript:, data: or other schemes.
func validateRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q has a fragment", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q has user info", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: http is allowed only for loopback hosts", raw)
	default:
		return fmt.Errorf("%q: scheme must be https or loopback http", raw)
	}
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redirectURIMatches compares a requested redirect URI with the registered
// ones exactly, except that a loopback http URI may use any port (RFC 8252
// §7.3: native apps get an ephemeral port from the OS).
func redirectURIMatches(registered []string, given string) bool {
	if slices.Contains(registered, given) {
		return true
	}
	g, err := url.Parse(given)
	if err != nil || g.Scheme != "http" || !isLoopbackHost(g.Hostname()) || g.Fragment != "" || g.User != nil {
		return false
	}
	for _, reg := range registered {
		r, err := url.Parse(reg)
		if err != nil || r.Scheme != "http" || !isLoopbackHost(r.Hostname()) {
			continue
		}
		if r.Hostname() == g.Hostname() && r.EscapedPath() == g.EscapedPath() && r.RawQuery == g.RawQuery {
			return true
		}
	}
	return false
}

// splitScope splits a space-delimited scope parameter (RFC 6749 §3.3),
// dropping repeats and keeping order.
func splitScope(scope string) []string {
	var out []string
	for _, s := range strings.Split(scope, " ") {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// resolveScope checks requested scopes against what the client may have;
// an empty request means all of the client's scopes (RFC 6749 §3.3 lets
// the server apply a default).
func resolveScope(requested string, allowed []string) (string, error) {
	if requested == "" {
		return strings.Join(allowed, " "), nil
	}
	scopes := splitScope(requested)
	for _, sc := range scopes {
		if !validScopeToken(sc) {
			return "", newError(ErrInvalidScope, "malformed scope")
		}
		if !slices.Contains(allowed, sc) {
			return "", newError(ErrInvalidScope, "scope "+sc+" is not allowed for this client")
		}
	}
	return strings.Join(scopes, " "), nil
}

// validateResource checks an RFC 8707 resource indicator: an absolute URI
// without a fragment.
func validateResource(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("%q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q has a fragment", raw)
	}
	return nil
}

// checkResource validates a requested resource against the allowlist.
func (s *Server) checkResource(resource string) error {
	if resource == "" {
		return nil
	}
	if err := validateResource(resource); err != nil {
		return newError(ErrInvalidTarget, "resource must be an absolute URI without a fragment")
	}
	if len(s.cfg.Resources.Allowed) > 0 && !slices.Contains(s.cfg.Resources.Allowed, resource) {
		return newError(ErrInvalidTarget, "resource is not allowed")
	}
	return nil
}

func joinScope(scopes []string) string { return strings.Join(scopes, " ") }

func sortUsers(users []User) {
	sort.Slice(users, func(i, j int) bool { return users[i].Subject < users[j].Subject })
}
