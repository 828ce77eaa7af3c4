package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Conformance suite client mode: the suite runs `sh -c "<command> <url>"`
// with the scenario in MCP_CONFORMANCE_SCENARIO and, for pre-registration,
// JSON credentials in MCP_CONFORMANCE_CONTEXT. Its mock authorization server
// approves at once, so the code is fetched headless.
const (
	conformanceRedirectURI = "http://localhost:3000/callback"
	conformanceCIMDURL     = "https://conformance-test.local/client-metadata.json"
)

// cmdConformance runs one conformance scenario against the URL.
func (a *App) cmdConformance(ctx context.Context) error {
	if len(a.args) != 1 {
		return errors.New("usage: conformance URL (scenario in MCP_CONFORMANCE_SCENARIO)")
	}
	server := a.args[0]
	scenario := os.Getenv("MCP_CONFORMANCE_SCENARIO")
	if scenario == "" {
		return errors.New("MCP_CONFORMANCE_SCENARIO is not set")
	}
	var cctx struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if raw := os.Getenv("MCP_CONFORMANCE_CONTEXT"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &cctx); err != nil {
			return fmt.Errorf("MCP_CONFORMANCE_CONTEXT: %w", err)
		}
	}
	// The scenario decides the client identity: never the user's config
	// or token cache.
	a.cfg.OAuth.RedirectURI = conformanceRedirectURI
	a.cfg.OAuth.ClientID, a.cfg.OAuth.ClientSecret = cctx.ClientID, cctx.ClientSecret
	a.cfg.OAuth.ClientIDMetadataURL = conformanceCIMDURL
	a.cfg.OAuth.Scopes = nil
	a.cfg.OAuth.LoginHint = ""
	a.cfg.OAuth.Mode = ModeHeadless
	h, err := a.handler(server, NewCache(""), a.printEvents(a.errOut))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*a.opTimeout())
	defer cancel()
	return runScenario(ctx, a, h, scenario)
}

func runScenario(ctx context.Context, a *App, h *Handler, scenario string) error {
	var opts *mcp.ClientOptions
	if strings.HasPrefix(scenario, "elicitation") {
		// SEP-1034: accept with empty content so the server's defaults apply.
		opts = &mcp.ClientOptions{ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{}}, nil
		}}
	}
	s, err := a.connect(ctx, h, opts, true)
	if err != nil {
		return err
	}
	defer s.Close()
	tools, err := s.ListTools(ctx, nil)
	if err != nil {
		return fmt.Errorf("tools/list: %w", err)
	}
	call := func(name string, args map[string]any) error {
		if !slices.ContainsFunc(tools.Tools, func(t *mcp.Tool) bool { return t.Name == name }) {
			return fmt.Errorf("tool %q not offered", name)
		}
		if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args}); err != nil {
			return fmt.Errorf("tools/call %s: %w", name, err)
		}
		return nil
	}
	switch {
	case scenario == "initialize":
		return nil
	case scenario == "tools_call":
		return call("add_numbers", map[string]any{"a": 5, "b": 3})
	case strings.HasPrefix(scenario, "elicitation"):
		return call("test_client_elicitation_defaults", map[string]any{})
	case scenario == "sse-retry":
		return call("test_reconnection", map[string]any{})
	case strings.HasPrefix(scenario, "auth/"):
		return call("test-tool", map[string]any{})
	}
	// Unknown scenario: initialize and list, the common ground of all.
	return nil
}
