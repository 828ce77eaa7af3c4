package authserver

// This file implements dynamic client registration (RFC 7591 §3). Unknown
// metadata is ignored (§2); bad redirect URIs answer invalid_redirect_uri,
// other bad metadata invalid_client_metadata (§3.2.2). Requested scopes
// beyond what the server offers are dropped rather than refused (§3.2.1
// lets the server replace values). Registration is capped by
// registration.max_clients and may require an initial access token (§3).

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
)

// registrationRequest is the RFC 7591 §2 client metadata this server
// understands.
type registrationRequest struct {
	RedirectURIs            []string  `json:"redirect_uris"`
	TokenEndpointAuthMethod *string   `json:"token_endpoint_auth_method"`
	GrantTypes              *[]string `json:"grant_types"`
	ResponseTypes           *[]string `json:"response_types"`
	ClientName              string    `json:"client_name"`
	ClientURI               string    `json:"client_uri"`
	LogoURI                 string    `json:"logo_uri"`
	Scope                   *string   `json:"scope"`
}

// registrationResponse is the RFC 7591 §3.2.1 response.
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RedirectURIs            []string `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	Scope                   string   `json:"scope"`
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	resp, err := s.register(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeNoStoreJSON(w, http.StatusCreated, resp)
}

func (s *Server) register(r *http.Request) (registrationResponse, error) {
	if !s.cfg.Registration.Enabled {
		return registrationResponse{}, &oauthError{Code: ErrInvalidRequest, Description: "registration is disabled", Status: http.StatusNotFound}
	}
	if err := s.checkInitialAccessToken(r); err != nil {
		return registrationResponse{}, err
	}
	body, err := readRegistrationBody(r)
	if err != nil {
		return registrationResponse{}, err
	}
	client, err := s.clientFromMetadata(body)
	if err != nil {
		return registrationResponse{}, err
	}
	secret := ""
	if isConfidential(client) {
		secret = randomToken()
		client.SecretHash = hashSecret(secret)
	}
	if err := s.storeRegisteredClient(r, client); err != nil {
		return registrationResponse{}, err
	}
	s.log.InfoContext(r.Context(), "client registered", "client_id", client.ID, "auth_method", client.AuthMethod, "grants", client.GrantTypes)
	return registrationResponseFor(client, secret), nil
}

func (s *Server) checkInitialAccessToken(r *http.Request) error {
	want := s.cfg.Registration.InitialAccessToken
	if want == "" {
		return nil
	}
	got, ok := bearerToken(r)
	if !ok || subtle.ConstantTimeCompare([]byte(hashSecret(got)), []byte(hashSecret(want))) != 1 {
		return newError(ErrInvalidToken, "a valid initial access token is required")
	}
	return nil
}

// readRegistrationBody reads a registration request's JSON body (the size
// limit is the router's).
func readRegistrationBody(r *http.Request) ([]byte, error) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return nil, errInvalidRequest("content type must be application/json")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	return body, nil
}

// clientFromMetadata decodes and validates the client metadata of a
// registration request (the whole of what /register checks before
// storing), so it can be fuzzed apart from HTTP.
func (s *Server) clientFromMetadata(body []byte) (store.Client, error) {
	notOne := newError(ErrInvalidClientMetadata, "body must be one JSON object of client metadata")
	// null would decode as empty metadata: only an object is metadata.
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return store.Client{}, notOne
	}
	var req registrationRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return store.Client{}, notOne
	}
	// Nothing may follow the object (dec.More alone lets a stray ] pass).
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return store.Client{}, notOne
	}
	if err := checkMemberCase(body); err != nil {
		return store.Client{}, err
	}
	return s.clientFromRegistration(req)
}

// registrationMembers are the JSON names of registrationRequest's fields.
var registrationMembers = []string{
	"redirect_uris", "token_endpoint_auth_method", "grant_types", "response_types",
	"client_name", "client_uri", "logo_uri", "scope",
}

// checkMemberCase refuses a member whose name differs from a known one only
// by case: RFC 7591 member names are case-sensitive, but encoding/json
// matches field names case-insensitively, so {"REDIRECT_URIS": ...} would
// otherwise register redirect URIs under a name the RFC does not define.
func checkMemberCase(body []byte) error {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return newError(ErrInvalidClientMetadata, "body must be one JSON object of client metadata")
	}
	for name := range members {
		for _, known := range registrationMembers {
			if name != known && strings.EqualFold(name, known) {
				return newError(ErrInvalidClientMetadata, "member names are case-sensitive: "+known+" is spelled in lower case")
			}
		}
	}
	return nil
}

// clientFromRegistration validates metadata and applies the RFC 7591 §2
// defaults (grant_types ["authorization_code"], response_types ["code"]).
// token_endpoint_auth_method defaults to none here rather than the RFC's
// client_secret_basic: MCP clients are public by default, and a client that
// wanted a secret asks for one.
func (s *Server) clientFromRegistration(req registrationRequest) (store.Client, error) {
	method := AuthNone
	if req.TokenEndpointAuthMethod != nil {
		method = *req.TokenEndpointAuthMethod
	}
	if !slices.Contains(supportedAuthMethods, method) {
		return store.Client{}, newError(ErrInvalidClientMetadata, "unsupported token_endpoint_auth_method")
	}
	grants := []string{GrantAuthorizationCode}
	if req.GrantTypes != nil {
		grants = dedupe(*req.GrantTypes)
	}
	responses := []string{"code"}
	if req.ResponseTypes != nil {
		responses = dedupe(*req.ResponseTypes)
	}
	if err := checkGrantsAndResponses(grants, responses, method); err != nil {
		return store.Client{}, err
	}
	if slices.Contains(grants, GrantAuthorizationCode) && len(req.RedirectURIs) == 0 {
		return store.Client{}, newError(ErrInvalidRedirectURI, "redirect_uris are required for authorization_code")
	}
	for _, u := range req.RedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return store.Client{}, newError(ErrInvalidRedirectURI, err.Error())
		}
	}
	if len(req.ClientName) > 200 || len(req.ClientURI) > 2000 || len(req.LogoURI) > 2000 || len(req.RedirectURIs) > 20 {
		return store.Client{}, newError(ErrInvalidClientMetadata, "metadata too large")
	}
	return store.Client{
		ID: randomID(), Name: req.ClientName, RedirectURIs: req.RedirectURIs,
		GrantTypes: grants, ResponseTypes: responses, Scopes: s.grantableScopes(req.Scope),
		AuthMethod: method, ClientURI: req.ClientURI, LogoURI: req.LogoURI,
		Dynamic: true, IssuedAt: s.now(),
	}, nil
}

// checkGrantsAndResponses enforces RFC 7591 §2.1 consistency.
func checkGrantsAndResponses(grants, responses []string, method string) error {
	for _, g := range grants {
		if !slices.Contains(supportedGrants, g) {
			return newError(ErrInvalidClientMetadata, fmt.Sprintf("unsupported grant type %q", g))
		}
	}
	for _, rt := range responses {
		if rt != "code" {
			return newError(ErrInvalidClientMetadata, fmt.Sprintf("unsupported response type %q", rt))
		}
	}
	if len(grants) == 0 {
		return newError(ErrInvalidClientMetadata, "grant_types must not be empty")
	}
	if slices.Contains(grants, GrantAuthorizationCode) != slices.Contains(responses, "code") {
		return newError(ErrInvalidClientMetadata, "authorization_code and response type code go together")
	}
	if slices.Contains(grants, GrantClientCredentials) && method == AuthNone {
		return newError(ErrInvalidClientMetadata, "client_credentials needs a confidential client")
	}
	if slices.Contains(grants, GrantRefreshToken) && !slices.Contains(grants, GrantAuthorizationCode) {
		return newError(ErrInvalidClientMetadata, "refresh_token needs authorization_code")
	}
	return nil
}

// grantableScopes keeps the requested scopes the server offers; no request
// means every scope.
func (s *Server) grantableScopes(requested *string) []string {
	if requested == nil {
		return slices.Clone(s.cfg.Scopes)
	}
	var out []string
	for _, sc := range splitScope(*requested) {
		if slices.Contains(s.cfg.Scopes, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// storeRegisteredClient stores the client if the cap allows. The store
// checks the cap and inserts in one atomic step: a count followed by a
// separate insert would let concurrent registrations overshoot the cap.
// When the cap is reached, clients idle past registration.client_ttl are
// swept and the registration tried once more.
func (s *Server) storeRegisteredClient(r *http.Request, client store.Client) error {
	ctx := r.Context()
	err := s.store.CreateDynamicClient(ctx, client, s.cfg.Registration.MaxClients)
	if errors.Is(err, store.ErrFull) && s.sweepIdleClients(ctx) > 0 {
		err = s.store.CreateDynamicClient(ctx, client, s.cfg.Registration.MaxClients)
	}
	if errors.Is(err, store.ErrFull) {
		return newError(ErrTemporarilyUnavailable, "registration limit reached")
	}
	if err != nil {
		return fmt.Errorf("store client: %w", err)
	}
	return nil
}

func registrationResponseFor(c store.Client, secret string) registrationResponse {
	resp := registrationResponse{
		ClientID: c.ID, ClientSecret: secret, ClientIDIssuedAt: c.IssuedAt.Unix(),
		RedirectURIs: c.RedirectURIs, TokenEndpointAuthMethod: c.AuthMethod,
		GrantTypes: c.GrantTypes, ResponseTypes: c.ResponseTypes,
		ClientName: c.Name, ClientURI: c.ClientURI, LogoURI: c.LogoURI, Scope: joinScope(c.Scopes),
	}
	if resp.ResponseTypes == nil {
		resp.ResponseTypes = []string{}
	}
	if secret != "" {
		never := int64(0)
		resp.ClientSecretExpiresAt = &never
	}
	return resp
}

func dedupe(in []string) []string {
	out := []string{}
	for _, v := range in {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
