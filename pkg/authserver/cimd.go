package authserver

// This file implements Client ID Metadata Documents (MCP authorization,
// revision 2025-11-25; draft-ietf-oauth-client-id-metadata-document): a
// client_id that is an https URL names a JSON document of client metadata
// that the server fetches. Because the URL comes from the outside, the
// fetch is guarded against SSRF: https only, a timeout, a size limit, no
// redirects, no proxy, and connections to loopback, private, link-local or
// otherwise special addresses refused (checked on the resolved address, at
// dial time, so DNS rebinding cannot slip through; see ssrf.go).
// cimd.allow_loopback, for tests, lets loopback addresses through and
// nothing else. Documents are cached per their
// Cache-Control max-age, within bounds, in a capped cache.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
)

const (
	maxCIMDBytes   = 10 << 10
	maxCIMDCache   = 1000
	cimdDefaultTTL = 5 * time.Minute
	cimdMinTTL     = time.Minute
	cimdMaxTTL     = 24 * time.Hour
)

// isCIMDClientID reports whether a client_id has the shape of a metadata
// document URL: https, a host, a path, no fragment, no user info.
func isCIMDClientID(id string) bool {
	u, err := url.Parse(id)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return false
	}
	return u.Path != "" && u.Path != "/" && !strings.Contains(id, "#")
}

type cimdEntry struct {
	client  store.Client
	expires time.Time
}

// cimdResolver fetches and caches client metadata documents.
type cimdResolver struct {
	client *http.Client
	now    func() time.Time
	scopes []string

	mu    sync.Mutex
	cache map[string]cimdEntry
}

func newCIMDResolver(cfg CIMDConfig, roots *x509.CertPool, now func() time.Time, scopes []string) *cimdResolver {
	dialer := &net.Dialer{
		Timeout: cfg.FetchTimeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			return checkFetchAddress(address, cfg.AllowLoopback)
		},
	}
	transport := &http.Transport{
		Proxy:                  nil, // a proxy would hide the address we must check
		DialContext:            dialer.DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    cfg.FetchTimeout,
		ResponseHeaderTimeout:  cfg.FetchTimeout,
		MaxResponseHeaderBytes: 16 << 10,
		DisableKeepAlives:      true,
	}
	return &cimdResolver{
		client: &http.Client{
			Transport: transport,
			Timeout:   cfg.FetchTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		now:    now,
		scopes: scopes,
		cache:  map[string]cimdEntry{},
	}
}

// resolve returns the client described by the document at id.
func (cr *cimdResolver) resolve(ctx context.Context, id string) (store.Client, error) {
	now := cr.now()
	cr.mu.Lock()
	e, ok := cr.cache[id]
	cr.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.client, nil
	}
	client, ttl, err := cr.fetch(ctx, id)
	if err != nil {
		return store.Client{}, err
	}
	if ttl > 0 {
		cr.put(id, cimdEntry{client: client, expires: now.Add(ttl)}, now)
	}
	return client, nil
}

func (cr *cimdResolver) put(id string, e cimdEntry, now time.Time) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if len(cr.cache) >= maxCIMDCache {
		for k, old := range cr.cache {
			if !now.Before(old.expires) {
				delete(cr.cache, k)
			}
		}
	}
	if len(cr.cache) >= maxCIMDCache {
		for k := range cr.cache {
			delete(cr.cache, k) // any victim: the cache is only an optimisation
			break
		}
	}
	cr.cache[id] = e
}

// cimdDocument is the client metadata (RFC 7591 §2 names) in the document.
type cimdDocument struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	LogoURI                 string   `json:"logo_uri"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope"`
}

func (cr *cimdResolver) fetch(ctx context.Context, id string) (store.Client, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return store.Client{}, 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := cr.client.Do(req)
	if err != nil {
		return store.Client{}, 0, fmt.Errorf("fetch %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return store.Client{}, 0, fmt.Errorf("fetch %s: status %d (redirects are not followed)", id, resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return store.Client{}, 0, fmt.Errorf("fetch %s: content type is not JSON", id)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCIMDBytes+1))
	if err != nil {
		return store.Client{}, 0, fmt.Errorf("read %s: %w", id, err)
	}
	if len(body) > maxCIMDBytes {
		return store.Client{}, 0, fmt.Errorf("document %s larger than %d bytes", id, maxCIMDBytes)
	}
	var doc cimdDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return store.Client{}, 0, fmt.Errorf("parse %s: %w", id, err)
	}
	client, err := cr.clientFromDocument(id, doc)
	if err != nil {
		return store.Client{}, 0, err
	}
	return client, cacheTTL(resp.Header.Get("Cache-Control")), nil
}

func (cr *cimdResolver) clientFromDocument(id string, doc cimdDocument) (store.Client, error) {
	if doc.ClientID != id {
		return store.Client{}, errors.New("client_id in the document does not equal its URL")
	}
	if len(doc.RedirectURIs) == 0 || len(doc.RedirectURIs) > 20 {
		return store.Client{}, errors.New("redirect_uris must list 1 to 20 URIs")
	}
	for _, u := range doc.RedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return store.Client{}, fmt.Errorf("redirect_uris: %w", err)
		}
	}
	if doc.TokenEndpointAuthMethod != "" && doc.TokenEndpointAuthMethod != AuthNone {
		return store.Client{}, fmt.Errorf("token_endpoint_auth_method %q is not supported for metadata documents (only none)", doc.TokenEndpointAuthMethod)
	}
	grants := doc.GrantTypes
	if len(grants) == 0 {
		grants = []string{GrantAuthorizationCode}
	}
	for _, g := range grants {
		if g != GrantAuthorizationCode && g != GrantRefreshToken {
			return store.Client{}, fmt.Errorf("grant type %q is not allowed for a public client", g)
		}
	}
	scopes := slices.Clone(cr.scopes)
	if doc.Scope != "" {
		scopes = nil
		for _, sc := range splitScope(doc.Scope) {
			if slices.Contains(cr.scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	name := doc.ClientName
	if len(name) > 200 {
		name = name[:200]
	}
	return store.Client{
		ID: id, Name: name, RedirectURIs: doc.RedirectURIs, GrantTypes: grants,
		ResponseTypes: []string{"code"}, Scopes: scopes, AuthMethod: AuthNone,
		ClientURI: doc.ClientURI, LogoURI: doc.LogoURI, IssuedAt: cr.now(),
	}, nil
}

// cacheTTL follows Cache-Control: no-store means do not cache; max-age is
// honoured within [cimdMinTTL, cimdMaxTTL]; otherwise cimdDefaultTTL.
func cacheTTL(header string) time.Duration {
	for _, d := range strings.Split(header, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "no-store" || d == "no-cache" {
			return 0
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			secs, err := strconv.Atoi(v)
			if err != nil || secs < 0 {
				return cimdDefaultTTL
			}
			return min(max(time.Duration(secs)*time.Second, cimdMinTTL), cimdMaxTTL)
		}
	}
	return cimdDefaultTTL
}
