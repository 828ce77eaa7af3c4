package mcpserver

// This file defines the MCP prompts (MCP server/prompts).

import (
	"context"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func (s *Server) addPrompts(srv *mcp.Server) {
	srv.AddPrompt(&mcp.Prompt{
		Name:        "summarize_notes",
		Title:       "Summarize my notes",
		Description: "Asks the model to summarize the calling user's notes.",
		Arguments:   []*mcp.PromptArgument{{Name: "style", Description: "e.g. brief, bullet points", Required: false}},
	}, s.summarizeNotesPrompt)
}

func (s *Server) summarizeNotesPrompt(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	id, err := s.caller(req.Extra)
	if err != nil {
		return nil, err
	}
	style := req.Params.Arguments["style"]
	if style == "" {
		style = "brief"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Summarize these notes (%s):\n", style)
	notes := s.notes.list(id.Subject)
	if len(notes) == 0 {
		b.WriteString("(no notes yet)\n")
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "- %s\n", n.Text)
	}
	return &mcp.GetPromptResult{
		Description: "Summary request for the caller's notes",
		Messages:    []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: b.String()}}},
	}, nil
}
