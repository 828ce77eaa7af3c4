package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// oauthClient drives the authorization server's endpoints the way the
// project's client does: RFC 6749 grants, PKCE S256 (RFC 7636), the iss
// check of RFC 9207 and the resource parameter of RFC 8707.
type oauthClient struct {
	http   *http.Client
	issuer string // the AS's issuer, which the iss redirect parameter must equal
	// authorizeURL and tokenURL are taken from the AS metadata and rebased
	// on the loopback base the tool was given, so an issuer of
	// http://localhost:3002 still reaches 127.0.0.1.
	authorizeURL string
	tokenURL     string
	jwksURL      string
}

// tokenResponse is the RFC 6749 §5.1 success body.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
}

// discoverAS reads the RFC 8414 metadata at base.
func discoverAS(ctx context.Context, client *http.Client, base *url.URL) (*oauthClient, error) {
	metaURL := base.JoinPath("/.well-known/oauth-authorization-server").String()
	var meta struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
		JWKSURI               string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, client, metaURL, &meta); err != nil {
		return nil, fmt.Errorf("authorization server metadata: %w", err)
	}
	if meta.Issuer == "" || meta.TokenEndpoint == "" || meta.AuthorizationEndpoint == "" {
		return nil, fmt.Errorf("authorization server metadata at %s lacks issuer, authorization_endpoint or token_endpoint", metaURL)
	}
	oc := &oauthClient{http: client, issuer: meta.Issuer}
	var err error
	if oc.authorizeURL, err = rebase(base, meta.AuthorizationEndpoint); err != nil {
		return nil, err
	}
	if oc.tokenURL, err = rebase(base, meta.TokenEndpoint); err != nil {
		return nil, err
	}
	if meta.JWKSURI != "" {
		if oc.jwksURL, err = rebase(base, meta.JWKSURI); err != nil {
			return nil, err
		}
	}
	return oc, nil
}

// rebase keeps the path and query of endpoint but the scheme and host of
// base, which the tool has checked to be loopback.
func rebase(base *url.URL, endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("parse endpoint %q: %w", endpoint, err)
	}
	u.Scheme, u.Host = base.Scheme, base.Host
	return u.String(), nil
}

// clientCredentials performs one RFC 6749 §4.4 grant with client_secret_basic.
func (o *oauthClient) clientCredentials(ctx context.Context, id, secret, scope, resource string) (*tokenResponse, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	if resource != "" {
		form.Set("resource", resource)
	}
	return o.token(ctx, form, id, secret)
}

// refresh performs one RFC 6749 §6 refresh for a public client; the answer
// carries the rotated refresh token.
func (o *oauthClient) refresh(ctx context.Context, clientID, refreshToken, resource string) (*tokenResponse, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {clientID}}
	if resource != "" {
		form.Set("resource", resource)
	}
	tok, err := o.token(ctx, form, "", "")
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		return nil, errors.New("refresh: response without a rotated refresh_token")
	}
	return tok, nil
}

// loginParams are what an authorization-code login needs.
type loginParams struct {
	clientID    string
	redirectURI string
	scope       string
	resource    string
	user        string // login_hint: the mock auto-approves as this user
}

// login performs an authorization-code login with PKCE against an
// auto-approving authorization server: GET /authorize (not following the
// redirect), check state and iss on the redirect, then exchange the code.
func (o *oauthClient) login(ctx context.Context, p loginParams) (*tokenResponse, error) {
	verifier := rand.Text() + rand.Text() // 52 characters from the unreserved set (RFC 7636 §4.1)
	sum := sha256.Sum256([]byte(verifier))
	state := rand.Text()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {p.clientID},
		"redirect_uri":          {p.redirectURI},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	for k, v := range map[string]string{"scope": p.scope, "resource": p.resource, "login_hint": p.user} {
		if v != "" {
			q.Set(k, v)
		}
	}
	code, err := o.authorize(ctx, q, state)
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {p.redirectURI},
		"client_id":     {p.clientID},
		"code_verifier": {verifier},
	}
	if p.resource != "" {
		form.Set("resource", p.resource)
	}
	return o.token(ctx, form, "", "")
}

// authorize sends the authorization request and returns the code from the
// redirect after checking state and, when present, iss (RFC 9207).
func (o *oauthClient) authorize(ctx context.Context, q url.Values, state string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.authorizeURL+"?"+q.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("authorize: %w", err)
	}
	resp, err := o.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("authorize: %w", err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("authorize: want a redirect from an auto-approving server (mock.auto_approve = true), got %w", statusError(resp))
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", fmt.Errorf("authorize: parse redirect: %w", err)
	}
	rq := loc.Query()
	if e := rq.Get("error"); e != "" {
		return "", fmt.Errorf("authorize: error=%s %s", e, rq.Get("error_description"))
	}
	if rq.Get("state") != state {
		return "", errors.New("authorize: state in the redirect does not match")
	}
	if iss := rq.Get("iss"); iss != "" && iss != o.issuer {
		return "", fmt.Errorf("authorize: iss %q in the redirect is not the issuer %q", iss, o.issuer)
	}
	code := rq.Get("code")
	if code == "" {
		return "", errors.New("authorize: redirect without a code")
	}
	return code, nil
}

// token POSTs a form to the token endpoint, with HTTP Basic client
// authentication when a secret is given.
func (o *oauthClient) token(ctx context.Context, form url.Values, id, secret string) (*tokenResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if secret != "" {
		// RFC 6749 §2.3.1: form-encode id and secret before Basic.
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := o.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token %s: %w", form.Get("grant_type"), err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("token %s: %w", form.Get("grant_type"), statusError(resp))
	}
	var tok tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(&tok); err != nil {
		return nil, fmt.Errorf("token %s: decode: %w", form.Get("grant_type"), err)
	}
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("token %s: response without access_token", form.Get("grant_type"))
	}
	return &tok, nil
}

// getJSON fetches url and decodes its JSON body into out.
func getJSON(ctx context.Context, client *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %w", u, statusError(resp))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", u, err)
	}
	return nil
}
