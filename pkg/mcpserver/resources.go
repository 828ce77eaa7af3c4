package mcpserver

// This file defines the MCP resources (MCP server/resources): two static
// demo documents and the caller's own notes under notes://<subject>/...
// A subject can read only its own notes; another subject's note URI answers
// "resource not found", so existence is not revealed either.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	readmeURI = "file://demo/readme.txt"
	configURI = "data://demo/config.json"
)

const readmeText = `MCP OAuth2 mock server

This server is an OAuth 2.0 protected resource (RFC 9728). Every request needs
a bearer token issued by its authorization server for this resource (RFC 8707).
Tools: whoami, echo, calculate, add_note (mcp:write), list_notes.
`

func (s *Server) addResources(srv *mcp.Server) {
	srv.AddResource(&mcp.Resource{URI: readmeURI, Name: "readme", Title: "About this server", MIMEType: "text/plain"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return textResource(req.Params.URI, "text/plain", readmeText), nil
		})
	srv.AddResource(&mcp.Resource{URI: configURI, Name: "config", Title: "Public server settings", MIMEType: "application/json"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			body, err := json.MarshalIndent(s.publicSettings(), "", "  ")
			if err != nil {
				return nil, fmt.Errorf("encode settings: %w", err)
			}
			return textResource(req.Params.URI, "application/json", string(body)), nil
		})
	srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "notes://{subject}", Name: "notes", Title: "Your notes", MIMEType: "application/json",
		Description: "All notes of the calling user; {subject} is your token's sub, percent-encoded."}, s.readNotes)
	srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "notes://{subject}/{id}", Name: "note", Title: "One of your notes", MIMEType: "text/plain",
		Description: "One note of the calling user."}, s.readNotes)
}

// publicSettings is what data://demo/config.json shows: nothing secret.
func (s *Server) publicSettings() map[string]any {
	return map[string]any{
		"resource":         s.cfg.Server.Resource,
		"issuer":           s.cfg.Auth.Issuer,
		"auth_enabled":     s.cfg.Auth.Enabled,
		"auth_mode":        s.cfg.Auth.Mode,
		"stateless":        s.cfg.Server.Stateless,
		"required_scope":   s.cfg.Auth.RequiredScope,
		"scopes_supported": s.scopes.supported(),
	}
}

func (s *Server) readNotes(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	id, err := s.caller(req.Extra)
	if err != nil {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	// Parsed by hand: url.Parse would read a subject like "a@b" as userinfo.
	rest, ok := strings.CutPrefix(uri, "notes://")
	subjectPart, noteID, _ := strings.Cut(rest, "/")
	subject, err := url.PathUnescape(subjectPart)
	if !ok || err != nil || subject != id.Subject || strings.Contains(noteID, "/") {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	if noteID == "" {
		body, err := json.Marshal(s.notes.list(id.Subject))
		if err != nil {
			return nil, fmt.Errorf("encode notes: %w", err)
		}
		return textResource(uri, "application/json", string(body)), nil
	}
	note, ok := s.notes.get(id.Subject, noteID)
	if !ok {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	return textResource(uri, "text/plain", note.Text), nil
}

func textResource(uri, mime, text string) *mcp.ReadResourceResult {
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: mime, Text: text}}}
}
