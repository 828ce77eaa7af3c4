package authserver

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cimdHost serves client metadata documents over TLS on 127.0.0.1.
type cimdHost struct {
	ts      *httptest.Server
	fetches atomic.Int32
}

func newCIMDHost(t *testing.T) *cimdHost {
	h := &cimdHost{}
	mux := http.NewServeMux()
	doc := func(id string, redirect string) []byte {
		b, _ := json.Marshal(map[string]any{
			"client_id": id, "client_name": "CIMD app", "redirect_uris": []string{redirect},
			"grant_types": []string{"authorization_code", "refresh_token"}, "token_endpoint_auth_method": "none",
		})
		return b
	}
	mux.HandleFunc("/client.json", func(w http.ResponseWriter, r *http.Request) {
		h.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=120")
		_, _ = w.Write(doc(h.ts.URL+"/client.json", testRedirect))
	})
	mux.HandleFunc("/mismatch.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc("https://other.example/client.json", testRedirect))
	})
	mux.HandleFunc("/redirect.json", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/client.json", http.StatusFound)
	})
	mux.HandleFunc("/big.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"client_name":"` + strings.Repeat("x", maxCIMDBytes) + `"}`))
	})
	mux.HandleFunc("/text.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write(doc(h.ts.URL+"/text.json", testRedirect))
	})
	mux.HandleFunc("/javascript.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc(h.ts.URL+"/javascript.json", "javascript:alert(1)"))
	})
	h.ts = httptest.NewTLSServer(mux)
	t.Cleanup(h.ts.Close)
	return h
}

func cimdEnv(t *testing.T, h *cimdHost, allowLoopback bool) *env {
	return newEnv(t, func(c *Config) {
		c.CIMD.AllowLoopback = allowLoopback
		pool := x509.NewCertPool()
		pool.AddCert(h.ts.Certificate())
		c.CIMDRootCAs = pool
	})
}

func TestCIMDClientFlow(t *testing.T) {
	h := newCIMDHost(t)
	e := cimdEnv(t, h, true)
	clientID := h.ts.URL + "/client.json"
	tok := e.login(authzParams{clientID: clientID, scope: "mcp:read offline_access"})
	assert.Equal(t, clientID, e.verify(str(tok["access_token"]))["client_id"])
	require.Equal(t, http.StatusOK, e.refresh(str(tok["refresh_token"]), clientID, nil).StatusCode)
	fetches := h.fetches.Load()
	assert.Equal(t, int32(1), fetches, "cached per max-age")
	e.clock.Advance(121 * time.Second)
	e.authorize(authzParams{clientID: clientID})
	assert.Equal(t, fetches+1, h.fetches.Load(), "refetched after max-age")
}

func TestCIMDRefusals(t *testing.T) {
	h := newCIMDHost(t)
	e := cimdEnv(t, h, true)
	for _, tc := range []struct{ name, clientID, redirect string }{
		{"client_id differs from URL", h.ts.URL + "/mismatch.json", ""},
		{"redirect followed", h.ts.URL + "/redirect.json", ""},
		{"too large", h.ts.URL + "/big.json", ""},
		{"not JSON", h.ts.URL + "/text.json", ""},
		{"bad redirect URI in document", h.ts.URL + "/javascript.json", ""},
		{"missing document", h.ts.URL + "/missing.json", ""},
		{"unregistered redirect", h.ts.URL + "/client.json", "http://127.0.0.1:3001/elsewhere"},
		{"http client_id", strings.Replace(h.ts.URL, "https", "http", 1) + "/client.json", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, challenge := pkcePair()
			resp := e.get("/authorize?"+authorizeQuery(authzParams{clientID: tc.clientID, redirect: tc.redirect}, challenge, "s").Encode(), nil)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Empty(t, resp.Header.Get("Location"))
		})
	}
}

func TestCIMDLoopbackRefusedByDefault(t *testing.T) {
	h := newCIMDHost(t)
	e := cimdEnv(t, h, false)
	_, challenge := pkcePair()
	resp := e.get("/authorize?"+authorizeQuery(authzParams{clientID: h.ts.URL + "/client.json"}, challenge, "s").Encode(), nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Zero(t, h.fetches.Load(), "the connection was refused before any request")
}

func TestCIMDDisabled(t *testing.T) {
	h := newCIMDHost(t)
	e := newEnv(t, func(c *Config) { c.CIMD.Enabled = false; c.CIMD.AllowLoopback = true })
	_, challenge := pkcePair()
	resp := e.get("/authorize?"+authorizeQuery(authzParams{clientID: h.ts.URL + "/client.json"}, challenge, "s").Encode(), nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Zero(t, h.fetches.Load())
}

func TestCIMDHelpers(t *testing.T) {
	for id, want := range map[string]bool{
		"https://app.example/client.json": true,
		"https://app.example":             false,
		"https://app.example/":            false,
		"http://app.example/client.json":  false,
		"https://u@app.example/c.json":    false,
		"https://app.example/c.json#f":    false,
		"plain-id":                        false,
	} {
		assert.Equal(t, want, isCIMDClientID(id), id)
	}
	assert.Equal(t, time.Duration(0), cacheTTL("no-store"))
	assert.Equal(t, cimdMinTTL, cacheTTL("max-age=1"))
	assert.Equal(t, cimdMaxTTL, cacheTTL("public, max-age=9999999"))
	assert.Equal(t, 10*time.Minute, cacheTTL("max-age=600"))
	assert.Equal(t, cimdDefaultTTL, cacheTTL(""))
}
