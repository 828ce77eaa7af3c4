// Command http-oauth2-client is the OAuth2 MCP client CLI: it discovers how
// an MCP server is protected, registers, logs in (authorization code + PKCE),
// caches and refreshes tokens, and calls the server's tools, resources and
// prompts. All logic is in pkg/client.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := client.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
