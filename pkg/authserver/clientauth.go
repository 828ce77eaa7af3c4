package authserver

// This file implements client authentication at the token, introspection
// and revocation endpoints (RFC 6749 §2.3.1): none (public clients send
// only client_id), client_secret_basic and client_secret_post. Secrets are
// compared as SHA-256 hashes in constant time. A client must use exactly one
// method (RFC 6749 §2.3).

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver/store"
)

// clientCredentials are what the request presented.
type clientCredentials struct {
	ClientID string
	Secret   string
	Method   string
}

// presentedCredentials extracts the client credentials from the request.
func presentedCredentials(r *http.Request, form params) (clientCredentials, error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		if form.get("client_secret") != "" {
			return clientCredentials{}, errInvalidRequest("use only one client authentication method")
		}
		// RFC 6749 §2.3.1: id and secret are form-urlencoded inside Basic.
		var errID, errSecret error
		id, errID = url.QueryUnescape(id)
		secret, errSecret = url.QueryUnescape(secret)
		if errID != nil || errSecret != nil || id == "" {
			return clientCredentials{}, newError(ErrInvalidClient, "malformed Basic credentials")
		}
		if formID := form.get("client_id"); formID != "" && formID != id {
			return clientCredentials{}, errInvalidRequest("client_id does not match the authenticated client")
		}
		return clientCredentials{ClientID: id, Secret: secret, Method: AuthClientSecretBasic}, nil
	}
	if r.Header.Get("Authorization") != "" {
		return clientCredentials{}, newError(ErrInvalidClient, "unsupported Authorization scheme")
	}
	id = form.get("client_id")
	if id == "" {
		return clientCredentials{}, newError(ErrInvalidClient, "client authentication required")
	}
	if secret := form.get("client_secret"); secret != "" {
		return clientCredentials{ClientID: id, Secret: secret, Method: AuthClientSecretPost}, nil
	}
	return clientCredentials{ClientID: id, Method: AuthNone}, nil
}

// authenticateClient authenticates the calling client. Confidential clients
// may use either secret method; public clients only none.
func (s *Server) authenticateClient(r *http.Request, form params) (store.Client, error) {
	creds, err := presentedCredentials(r, form)
	if err != nil {
		return store.Client{}, err
	}
	fail := func(desc string) error { return newError(ErrInvalidClient, desc) }
	client, err := s.lookupClient(r.Context(), creds.ClientID)
	if errors.Is(err, errUnknownClient) {
		return store.Client{}, fail("client authentication failed")
	}
	if err != nil {
		return store.Client{}, err
	}
	if !isConfidential(client) {
		if creds.Method != AuthNone {
			return store.Client{}, fail("public client must not send a secret")
		}
		return client, nil
	}
	if creds.Method == AuthNone {
		return store.Client{}, fail("client authentication required")
	}
	presented := hashSecret(creds.Secret)
	if subtle.ConstantTimeCompare([]byte(presented), []byte(client.SecretHash)) != 1 {
		return store.Client{}, fail("client authentication failed")
	}
	return client, nil
}
