package mcpserver_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/mcpserver"
)

// A request without a token gets the RFC 9728 challenge that starts a
// client's OAuth flow: where the resource metadata is and which scope to ask
// for.
func Example() {
	dir, err := os.MkdirTemp("", "mcpserver-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	cfg := mcpserver.DefaultConfig()
	cfg.Audit.File = filepath.Join(dir, "audit.jsonl")
	srv, err := mcpserver.New(cfg, mcpserver.Options{})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/mcp", nil))
	fmt.Println(rec.Code)
	fmt.Println(rec.Header().Get("WWW-Authenticate"))
	// Output:
	// 401
	// Bearer scope="mcp:read", resource_metadata="http://localhost:3003/.well-known/oauth-protected-resource/mcp"
}
