package client

// This file implements token revocation. See RFC 7009.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Revoke asks the authorization server to revoke token (RFC 7009 §2.1),
// authenticating as the client the token was issued to: HTTP Basic for a
// confidential client using client_secret_basic, the body otherwise (a
// public client sends only its client_id).
func Revoke(ctx context.Context, client *http.Client, endpoint string, c *ClientRecord, token, hint string) error {
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	basic := c.ClientSecret != "" && oauth2.AuthStyle(c.AuthStyle) != oauth2.AuthStyleInParams
	if !basic {
		form.Set("client_id", c.ClientID)
		if c.ClientSecret != "" {
			form.Set("client_secret", c.ClientSecret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("revocation request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		// RFC 6749 §2.3.1: form-encode before Basic.
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("revocation endpoint unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &oe) == nil && oe.Error != "" {
		return fmt.Errorf("revocation refused: HTTP %d %s%s", resp.StatusCode, oe.Error, descSuffix(oe.Description))
	}
	return fmt.Errorf("revocation refused: HTTP %d", resp.StatusCode)
}
