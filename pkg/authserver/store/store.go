// Package store holds the authorization server's state behind one
// interface, with an in-memory implementation (memory.go) and a SQLite one
// (sqlite.go, modernc.org/sqlite, no cgo) so that registered clients,
// refresh-token families and revocations can survive a restart.
//
// Authorization codes and refresh tokens are opaque random strings; only
// their SHA-256 hashes are stored, so a copy of the store does not let
// anyone redeem them. Client secrets are stored hashed too.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// ErrFull is returned when a table has reached its cap, so outside input
// cannot grow the store without bound.
var ErrFull = errors.New("store full")

// ErrExists is returned when a record to be created already exists.
var ErrExists = errors.New("already exists")

// CodeGrace is how long a code is kept after it expires, so that a late
// replay is still recognised as a replay and revokes what the code issued.
const CodeGrace = time.Hour

// TombstoneTTL is how long a revoked family that had no record is
// remembered: longer than any access token issued in the race it covers.
const TombstoneTTL = 24 * time.Hour

// Client is a registered client.
type Client struct {
	ID string `json:"client_id"`
	// SecretHash is the hex SHA-256 of the secret; empty for public clients.
	SecretHash    string    `json:"secret_hash,omitempty"`
	Name          string    `json:"client_name,omitempty"`
	RedirectURIs  []string  `json:"redirect_uris,omitempty"`
	GrantTypes    []string  `json:"grant_types,omitempty"`
	ResponseTypes []string  `json:"response_types,omitempty"`
	Scopes        []string  `json:"scopes,omitempty"`
	AuthMethod    string    `json:"token_endpoint_auth_method"`
	ClientURI     string    `json:"client_uri,omitempty"`
	LogoURI       string    `json:"logo_uri,omitempty"`
	Dynamic       bool      `json:"dynamic,omitempty"`
	IssuedAt      time.Time `json:"issued_at"`
}

// Code is an authorization code (RFC 6749 §4.1.2) and everything it is
// bound to.
type Code struct {
	Hash        string
	ClientID    string
	RedirectURI string
	// Challenge is the S256 PKCE code_challenge (RFC 7636 §4.3).
	Challenge string
	Resource  string
	Scope     string
	Subject   string
	Nonce     string
	// Claims are the user's claims for the tokens (email, name, extras).
	Claims    map[string]any
	AuthTime  time.Time
	ExpiresAt time.Time
	// FamilyID names the grant the code starts: every token it issues
	// belongs to this family, so a replay can revoke them all.
	FamilyID string
	Used     bool
}

// Family is one grant: the chain of refresh tokens (and the access tokens
// issued with them) that started with one authorization code.
type Family struct {
	ID        string
	ClientID  string
	Subject   string
	Revoked   bool
	ExpiresAt time.Time
}

// RefreshToken is one refresh token of a family.
type RefreshToken struct {
	Hash      string
	FamilyID  string
	ClientID  string
	Subject   string
	Scope     string
	Resource  string
	Claims    map[string]any
	AuthTime  time.Time
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Used is set when the token has been rotated; presenting it again is
	// reuse (theft, per OAuth 2.1 §4.3.1) and revokes the family.
	Used bool
}

// AccessToken records a JWT access token by its jti, so that revocation
// and introspection can answer for it: user tokens when issued (their
// family or subject may be revoked later), any token when revoked.
type AccessToken struct {
	JTI       string
	FamilyID  string
	ClientID  string
	Subject   string
	ExpiresAt time.Time
	Revoked   bool
}

// Store is the authorization server's state.
type Store interface {
	// PutClient creates or replaces a client.
	PutClient(ctx context.Context, c Client) error
	// GetClient returns ErrNotFound for an unknown client.
	GetClient(ctx context.Context, id string) (Client, error)
	DeleteClient(ctx context.Context, id string) error
	// CountDynamicClients counts clients created by dynamic registration.
	CountDynamicClients(ctx context.Context) (int, error)
	// CreateDynamicClient stores a new dynamically registered client
	// (c.Dynamic must be set) unless max dynamic clients already exist, in
	// which case it returns ErrFull. The count and the insert are one atomic
	// step, so concurrent registrations cannot exceed the cap. It returns
	// ErrExists when the client ID is taken.
	CreateDynamicClient(ctx context.Context, c Client, max int) error
	// TouchClient records that a dynamically registered client was used at
	// at (a no-op for any other client); SweepIdleClients reads it.
	TouchClient(ctx context.Context, id string, at time.Time) error
	// SweepIdleClients deletes the dynamically registered clients neither
	// registered nor used since before that hold no live (unrevoked,
	// unexpired at now) refresh-token family, and returns how many, so
	// that abandoned registrations do not keep registration.max_clients
	// reached for ever.
	SweepIdleClients(ctx context.Context, before, now time.Time) (int, error)

	PutCode(ctx context.Context, c Code) error
	// GetCode returns a code without changing it (Used reports whether it
	// was taken), so its bindings can be checked before it is spent.
	GetCode(ctx context.Context, hash string) (Code, error)
	// TakeCode marks a code used, atomically, and returns it as it was
	// before: Used true means this is a replay.
	TakeCode(ctx context.Context, hash string) (Code, error)

	// PutFamily creates or extends a family; a revoked family stays revoked.
	PutFamily(ctx context.Context, f Family) error
	GetFamily(ctx context.Context, id string) (Family, error)
	// RevokeFamily revokes a family and every access token issued in it.
	RevokeFamily(ctx context.Context, id string) error

	PutRefresh(ctx context.Context, t RefreshToken) error
	GetRefresh(ctx context.Context, hash string) (RefreshToken, error)
	// TakeRefresh marks a refresh token used, atomically, and returns it as
	// it was before: Used true means reuse of a rotated token.
	TakeRefresh(ctx context.Context, hash string) (RefreshToken, error)

	PutAccess(ctx context.Context, t AccessToken) error
	GetAccess(ctx context.Context, jti string) (AccessToken, error)
	// RevokeAccess marks an access token revoked, recording it when it was
	// not recorded at issue (client_credentials tokens are not, so a load
	// of them does not fill the store).
	RevokeAccess(ctx context.Context, t AccessToken) error
	// RevokeSubject revokes every family and access token of a user.
	RevokeSubject(ctx context.Context, subject string) error

	// DeleteExpired drops records that can no longer matter at now.
	DeleteExpired(ctx context.Context, now time.Time) error
	// Reset empties the store.
	Reset(ctx context.Context) error
	Close() error
}
