package authserver

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetadataListsEveryEndpointAndCapability(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		resp := e.get(path, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		m := decode(t, resp)
		iss := "http://issuer.test"
		assert.Equal(t, iss, m["issuer"])
		for key, suffix := range map[string]string{
			"authorization_endpoint": "/authorize", "token_endpoint": "/token", "jwks_uri": "/jwks",
			"registration_endpoint": "/register", "introspection_endpoint": "/introspect",
			"revocation_endpoint": "/revoke", "userinfo_endpoint": "/userinfo",
		} {
			assert.Equal(t, iss+suffix, m[key], key)
		}
		assert.Equal(t, []any{"code"}, m["response_types_supported"])
		assert.Equal(t, []any{"query"}, m["response_modes_supported"])
		assert.Equal(t, []any{"S256"}, m["code_challenge_methods_supported"])
		assert.Equal(t, true, m["authorization_response_iss_parameter_supported"])
		assert.Equal(t, true, m["client_id_metadata_document_supported"])
		assert.ElementsMatch(t, []any{"authorization_code", "refresh_token", "client_credentials"}, m["grant_types_supported"])
		methods := []any{"none", "client_secret_basic", "client_secret_post"}
		for _, k := range []string{"token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
			assert.Equal(t, methods, m[k], k)
		}
		assert.Equal(t, methods[1:], m["introspection_endpoint_auth_methods_supported"])
		assert.Equal(t, []any{"public"}, m["subject_types_supported"])
		assert.Equal(t, []any{"RS256"}, m["id_token_signing_alg_values_supported"])
		assert.Contains(t, m["claims_supported"], "email")
		assert.Len(t, m["scopes_supported"], len(DefaultScopes))
	}
}

func TestMetadataWithoutRegistration(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Registration.Enabled = false; c.CIMD.Enabled = false })
	m := decode(t, e.get("/.well-known/oauth-authorization-server", nil))
	assert.NotContains(t, m, "registration_endpoint")
	assert.Equal(t, false, m["client_id_metadata_document_supported"])
	resp := e.post("/register", "application/json", `{"redirect_uris":["https://a.example/cb"]}`, nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestMetadataIssuerWithPath(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Server.Issuer = "http://issuer.test/tenant" })
	// RFC 8414 §3.1 path insertion and the OIDC appended form.
	for _, p := range []string{"/.well-known/oauth-authorization-server/tenant", "/.well-known/openid-configuration/tenant", "/tenant/.well-known/openid-configuration"} {
		resp := e.get(p, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		m := decode(t, resp)
		assert.Equal(t, "http://issuer.test/tenant/token", m["token_endpoint"])
	}
	// Endpoints live under the issuer's path.
	assert.Equal(t, http.StatusOK, e.get("/tenant/jwks", nil).StatusCode)
	assert.Equal(t, http.StatusNotFound, e.get("/jwks", nil).StatusCode)
}

func TestHealthzAndSecurityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.get("/healthz", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, map[string]any{"status": "ok"}, decode(t, resp))
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
}
