package mcpserver

// This file defines the MCP tools (MCP server/tools): whoami, echo,
// calculate, add_note and list_notes, registered with the SDK's typed
// mcp.AddTool so input and output schemas come from the Go types. Each
// handler checks its tool's scopes again, so a crafted body that slipped
// past the HTTP-layer peek still cannot run a tool without them.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// anonymousSubject is the caller when auth.enabled = false.
const anonymousSubject = "anonymous"

// caller returns the verified identity of a request.
func (s *Server) caller(extra *mcp.RequestExtra) (*Identity, error) {
	if !s.cfg.Auth.Enabled {
		return &Identity{Subject: anonymousSubject}, nil
	}
	if extra == nil || extra.TokenInfo == nil {
		return nil, errors.New("request has no verified token")
	}
	id, ok := extra.TokenInfo.Extra[identityExtraKey].(*Identity)
	if !ok || id == nil {
		return nil, errors.New("request has no verified identity")
	}
	return id, nil
}

// authorizeTool returns the caller if it holds every scope of tool.
func (s *Server) authorizeTool(req *mcp.CallToolRequest, tool string) (*Identity, error) {
	id, err := s.caller(req.Extra)
	if err != nil {
		return nil, err
	}
	if s.cfg.Auth.Enabled {
		need := s.scopes.forTool(tool)
		if missing := missingScopes(id.Scopes, need); len(missing) > 0 {
			return nil, fmt.Errorf("insufficient scope: %s needs %s", tool, strings.Join(need, " "))
		}
	}
	return id, nil
}

// WhoamiOutput is the structured result of whoami.
type WhoamiOutput struct {
	Subject       string   `json:"subject" jsonschema:"the token's sub"`
	Email         string   `json:"email,omitempty"`
	Name          string   `json:"name,omitempty"`
	ClientID      string   `json:"client_id,omitempty" jsonschema:"the OAuth client the token was issued to"`
	Scopes        []string `json:"scopes"`
	ExpiresAt     string   `json:"expires_at,omitempty" jsonschema:"token expiry, RFC 3339"`
	Authenticated bool     `json:"authenticated"`
}

// EchoInput is the input of echo.
type EchoInput struct {
	Message string `json:"message" jsonschema:"the text to echo back"`
}

// CalculateInput is the input of calculate.
type CalculateInput struct {
	Operation string  `json:"operation" jsonschema:"one of add, subtract, multiply, divide"`
	A         float64 `json:"a" jsonschema:"left operand"`
	B         float64 `json:"b" jsonschema:"right operand"`
}

// CalculateOutput is the structured result of calculate.
type CalculateOutput struct {
	Operation string  `json:"operation"`
	A         float64 `json:"a"`
	B         float64 `json:"b"`
	Result    float64 `json:"result"`
}

// AddNoteInput is the input of add_note.
type AddNoteInput struct {
	Text string `json:"text" jsonschema:"the note, at most 4096 bytes"`
}

// ListNotesOutput is the structured result of list_notes.
type ListNotesOutput struct {
	Notes []Note `json:"notes"`
}

func (s *Server) addTools(srv *mcp.Server) {
	mcp.AddTool(srv, &mcp.Tool{Name: toolWhoami, Description: "Who the caller is, from the access token: subject, email, name, client, scopes, expiry."}, s.whoami)
	mcp.AddTool(srv, &mcp.Tool{Name: toolEcho, Description: "Echo a message back."}, s.echo)
	mcp.AddTool(srv, &mcp.Tool{Name: toolCalculate, Description: "Add, subtract, multiply or divide two numbers."}, s.calculate)
	mcp.AddTool(srv, &mcp.Tool{Name: toolAddNote, Description: "Save a note for the calling user (needs mcp:write)."}, s.addNote)
	mcp.AddTool(srv, &mcp.Tool{Name: toolListNotes, Description: "List the calling user's notes."}, s.listNotes)
}

func (s *Server) whoami(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, WhoamiOutput, error) {
	id, err := s.authorizeTool(req, toolWhoami)
	if err != nil {
		return nil, WhoamiOutput{}, err
	}
	out := WhoamiOutput{
		Subject: id.Subject, Email: id.Email, Name: id.Name, ClientID: id.ClientID,
		Scopes: append([]string{}, id.Scopes...), Authenticated: s.cfg.Auth.Enabled,
	}
	if !id.ExpiresAt.IsZero() {
		out.ExpiresAt = id.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return nil, out, nil
}

func (s *Server) echo(_ context.Context, req *mcp.CallToolRequest, in EchoInput) (*mcp.CallToolResult, any, error) {
	if _, err := s.authorizeTool(req, toolEcho); err != nil {
		return nil, nil, err
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Message}}}, nil, nil
}

func (s *Server) calculate(_ context.Context, req *mcp.CallToolRequest, in CalculateInput) (*mcp.CallToolResult, CalculateOutput, error) {
	if _, err := s.authorizeTool(req, toolCalculate); err != nil {
		return nil, CalculateOutput{}, err
	}
	out := CalculateOutput{Operation: in.Operation, A: in.A, B: in.B}
	switch in.Operation {
	case "add":
		out.Result = in.A + in.B
	case "subtract":
		out.Result = in.A - in.B
	case "multiply":
		out.Result = in.A * in.B
	case "divide":
		if in.B == 0 {
			return nil, CalculateOutput{}, errors.New("division by zero: b must not be 0")
		}
		out.Result = in.A / in.B
	default:
		return nil, CalculateOutput{}, fmt.Errorf("unknown operation %q: use add, subtract, multiply or divide", in.Operation)
	}
	if math.IsInf(out.Result, 0) || math.IsNaN(out.Result) {
		return nil, CalculateOutput{}, errors.New("result out of range")
	}
	return nil, out, nil
}

func (s *Server) addNote(_ context.Context, req *mcp.CallToolRequest, in AddNoteInput) (*mcp.CallToolResult, Note, error) {
	id, err := s.authorizeTool(req, toolAddNote)
	if err != nil {
		return nil, Note{}, err
	}
	note, err := s.notes.add(id.Subject, in.Text)
	if err != nil {
		return nil, Note{}, err
	}
	return nil, note, nil
}

func (s *Server) listNotes(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, ListNotesOutput, error) {
	id, err := s.authorizeTool(req, toolListNotes)
	if err != nil {
		return nil, ListNotesOutput{}, err
	}
	return nil, ListNotesOutput{Notes: s.notes.list(id.Subject)}, nil
}
