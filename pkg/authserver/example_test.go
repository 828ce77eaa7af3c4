package authserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver"
)

// Example runs the authorization server inside a test, as a library, and
// gets a client_credentials token from it. The controls of the HTTP control
// API are Go methods on the server.
func Example() {
	cfg := authserver.DefaultConfig() // a generated key, kept in memory
	cfg.Keys.Algorithm = "ES256"      // fast to generate
	srv, err := authserver.New(cfg)
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()

	token := func() (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/token",
			strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp:read"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("mcp-service", "mcp-service-dev-secret")
		return http.DefaultClient.Do(req)
	}
	resp, err := token()
	if err != nil {
		panic(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, body["token_type"], body["scope"])

	// Make the next token request fail, as a flaky server would.
	_ = srv.QueueFault(authserver.Fault{Endpoint: "token", Status: 503, Error: "temporarily_unavailable"})
	resp, err = token()
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, srv.Stats().Grants["client_credentials"])
	// Output:
	// 200 Bearer mcp:read
	// 503 1
}
