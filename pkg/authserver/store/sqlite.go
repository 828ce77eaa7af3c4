package store

// SQLite implementation of Store (modernc.org/sqlite, pure Go, no cgo), so
// registered clients, refresh-token families and revocations survive a
// restart. One connection serialises every statement, which makes the
// Take* compare-and-set operations atomic without explicit locking.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS clients (id TEXT PRIMARY KEY, dynamic INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS codes (hash TEXT PRIMARY KEY, used INTEGER NOT NULL, expires INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS families (id TEXT PRIMARY KEY, client_id TEXT NOT NULL, subject TEXT NOT NULL, revoked INTEGER NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS refresh (hash TEXT PRIMARY KEY, family_id TEXT NOT NULL, used INTEGER NOT NULL, expires INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS access (jti TEXT PRIMARY KEY, family_id TEXT NOT NULL, client_id TEXT NOT NULL, subject TEXT NOT NULL, revoked INTEGER NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS client_activity (id TEXT PRIMARY KEY, active INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS families_client ON families(client_id);
CREATE INDEX IF NOT EXISTS access_family ON access(family_id);
CREATE INDEX IF NOT EXISTS access_subject ON access(subject);
CREATE INDEX IF NOT EXISTS families_subject ON families(subject);
`

// SQLite is a Store in a SQLite database file.
type SQLite struct {
	db  *sql.DB
	now func() time.Time
}

// OpenSQLite opens (creating when needed) the database at path; the
// directory is created 0700 and the file is private to the user.
func OpenSQLite(path string, now func() time.Time) (*SQLite, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create directory for %s: %w", path, err)
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(sqliteSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("create schema in %s: %w", path, err)
	}
	// Dynamic clients from before client_activity existed start their
	// idle time now rather than being swept at once.
	if _, err := db.Exec(`INSERT OR IGNORE INTO client_activity(id, active) SELECT id, ? FROM clients WHERE dynamic=1`, unix(now())); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialise client activity in %s: %w", path, err)
	}
	_ = os.Chmod(path, 0o600)
	return &SQLite{db: db, now: now}, nil
}

func unix(t time.Time) int64 { return t.UnixNano() }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// PutClient implements Store.
func (s *SQLite) PutClient(ctx context.Context, c Client) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode client: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO clients(id, dynamic, data) VALUES(?,?,?)
		ON CONFLICT(id) DO UPDATE SET dynamic=excluded.dynamic, data=excluded.data`, c.ID, boolInt(c.Dynamic), string(data))
	if err != nil || !c.Dynamic {
		return wrap("put client", err)
	}
	return s.markActive(ctx, c.ID, c.IssuedAt)
}

// markActive moves a client's activity time forward to at.
func (s *SQLite) markActive(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO client_activity(id, active) VALUES(?,?)
		ON CONFLICT(id) DO UPDATE SET active=MAX(client_activity.active, excluded.active)`, id, unix(at))
	return wrap("record client activity", err)
}

// GetClient implements Store.
func (s *SQLite) GetClient(ctx context.Context, id string) (Client, error) {
	var data string
	err := s.db.QueryRowContext(ctx, `SELECT data FROM clients WHERE id=?`, id).Scan(&data)
	if err != nil {
		return Client{}, notFound("get client", err)
	}
	var c Client
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		return Client{}, fmt.Errorf("decode client: %w", err)
	}
	return c, nil
}

// DeleteClient implements Store.
func (s *SQLite) DeleteClient(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM clients WHERE id=?`, id)
	if err == nil {
		_, err = s.db.ExecContext(ctx, `DELETE FROM client_activity WHERE id=?`, id)
	}
	return wrap("delete client", err)
}

// TouchClient implements Store. Only a row for a dynamic client exists, and
// only a time at least a minute newer is written, so a busy client does
// not cost a write per request.
func (s *SQLite) TouchClient(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE client_activity SET active=? WHERE id=? AND active < ?`,
		unix(at), id, unix(at.Add(-time.Minute)))
	return wrap("touch client", err)
}

// SweepIdleClients implements Store, in one transaction.
func (s *SQLite) SweepIdleClients(ctx context.Context, before, now time.Time) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sweep clients: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, `DELETE FROM clients WHERE dynamic=1
		AND id IN (SELECT id FROM client_activity WHERE active < ?)
		AND id NOT IN (SELECT client_id FROM families WHERE revoked=0 AND expires > ?)`, unix(before), unix(now))
	if err != nil {
		return 0, fmt.Errorf("sweep clients: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sweep clients: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM client_activity WHERE id NOT IN (SELECT id FROM clients)`); err != nil {
		return 0, fmt.Errorf("sweep clients: %w", err)
	}
	return int(n), wrap("sweep clients", tx.Commit())
}

// CountDynamicClients implements Store.
func (s *SQLite) CountDynamicClients(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM clients WHERE dynamic=1`).Scan(&n)
	return n, wrap("count clients", err)
}

// CreateDynamicClient implements Store. The cap check and the insert are
// one INSERT ... SELECT statement, which SQLite runs as one transaction
// holding the write lock, so concurrent registrations (even from another
// process on the same file) cannot both pass the check.
func (s *SQLite) CreateDynamicClient(ctx context.Context, c Client, max int) error {
	c.Dynamic = true
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode client: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO clients(id, dynamic, data)
		SELECT ?, 1, ? WHERE (SELECT COUNT(*) FROM clients WHERE dynamic=1) < ?
		ON CONFLICT(id) DO NOTHING`, c.ID, string(data), max)
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	if n == 1 {
		return s.markActive(ctx, c.ID, c.IssuedAt)
	}
	// Nothing inserted: either the cap or the ID. Telling them apart needs
	// a second read, which is only a diagnosis, not part of the decision.
	if _, err := s.GetClient(ctx, c.ID); err == nil {
		return ErrExists
	}
	return ErrFull
}

// PutCode implements Store.
func (s *SQLite) PutCode(ctx context.Context, c Code) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode code: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO codes(hash, used, expires, data) VALUES(?,?,?,?)`,
		c.Hash, boolInt(c.Used), unix(c.ExpiresAt), string(data))
	return wrap("put code", err)
}

// GetCode implements Store.
func (s *SQLite) GetCode(ctx context.Context, hash string) (Code, error) {
	var data string
	var used int
	err := s.db.QueryRowContext(ctx, `SELECT data, used FROM codes WHERE hash=?`, hash).Scan(&data, &used)
	if err != nil {
		return Code{}, notFound("get code", err)
	}
	var c Code
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		return Code{}, fmt.Errorf("decode code: %w", err)
	}
	c.Used = used == 1
	return c, nil
}

// TakeCode implements Store.
func (s *SQLite) TakeCode(ctx context.Context, hash string) (Code, error) {
	var c Code
	err := s.take(ctx, "codes", "hash", hash, &c)
	return c, err
}

// take reads a row's data and used flag and sets used, in one transaction.
func (s *SQLite) take(ctx context.Context, table, key, value string, out any) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("take from %s: %w", table, err)
	}
	defer func() { _ = tx.Rollback() }()
	var data string
	var used int
	err = tx.QueryRowContext(ctx, `SELECT data, used FROM `+table+` WHERE `+key+`=?`, value).Scan(&data, &used)
	if err != nil {
		return notFound("take from "+table, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET used=1 WHERE `+key+`=?`, value); err != nil {
		return fmt.Errorf("take from %s: %w", table, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("take from %s: %w", table, err)
	}
	if err := json.Unmarshal([]byte(data), out); err != nil {
		return fmt.Errorf("decode %s: %w", table, err)
	}
	// The used flag lives in its own column; report the state before.
	switch v := out.(type) {
	case *Code:
		v.Used = used == 1
	case *RefreshToken:
		v.Used = used == 1
	}
	return nil
}

// PutFamily implements Store.
func (s *SQLite) PutFamily(ctx context.Context, f Family) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO families(id, client_id, subject, revoked, expires) VALUES(?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET expires=excluded.expires, revoked=MAX(families.revoked, excluded.revoked)`,
		f.ID, f.ClientID, f.Subject, boolInt(f.Revoked), unix(f.ExpiresAt))
	return wrap("put family", err)
}

// GetFamily implements Store.
func (s *SQLite) GetFamily(ctx context.Context, id string) (Family, error) {
	f := Family{ID: id}
	var revoked int
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT client_id, subject, revoked, expires FROM families WHERE id=?`, id).
		Scan(&f.ClientID, &f.Subject, &revoked, &expires)
	if err != nil {
		return Family{}, notFound("get family", err)
	}
	f.Revoked = revoked == 1
	f.ExpiresAt = time.Unix(0, expires)
	return f, nil
}

// RevokeFamily implements Store.
func (s *SQLite) RevokeFamily(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke family: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	// Insert a tombstone when the family has no record yet, so tokens still
	// being issued in it (a race with the replay that revoked it) are born
	// revoked.
	if _, err := tx.ExecContext(ctx, `INSERT INTO families(id, client_id, subject, revoked, expires) VALUES(?, '', '', 1, ?)
		ON CONFLICT(id) DO UPDATE SET revoked=1`, id, unix(s.now().Add(TombstoneTTL))); err != nil {
		return fmt.Errorf("revoke family: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE access SET revoked=1 WHERE family_id=?`, id); err != nil {
		return fmt.Errorf("revoke family tokens: %w", err)
	}
	return wrap("revoke family", tx.Commit())
}

// PutRefresh implements Store.
func (s *SQLite) PutRefresh(ctx context.Context, t RefreshToken) error {
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode refresh token: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO refresh(hash, family_id, used, expires, data) VALUES(?,?,?,?,?)`,
		t.Hash, t.FamilyID, boolInt(t.Used), unix(t.ExpiresAt), string(data))
	return wrap("put refresh token", err)
}

// GetRefresh implements Store.
func (s *SQLite) GetRefresh(ctx context.Context, hash string) (RefreshToken, error) {
	var data string
	var used int
	err := s.db.QueryRowContext(ctx, `SELECT data, used FROM refresh WHERE hash=?`, hash).Scan(&data, &used)
	if err != nil {
		return RefreshToken{}, notFound("get refresh token", err)
	}
	var t RefreshToken
	if err := json.Unmarshal([]byte(data), &t); err != nil {
		return RefreshToken{}, fmt.Errorf("decode refresh token: %w", err)
	}
	t.Used = used == 1
	return t, nil
}

// TakeRefresh implements Store.
func (s *SQLite) TakeRefresh(ctx context.Context, hash string) (RefreshToken, error) {
	var t RefreshToken
	err := s.take(ctx, "refresh", "hash", hash, &t)
	return t, err
}

// PutAccess implements Store.
func (s *SQLite) PutAccess(ctx context.Context, t AccessToken) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO access(jti, family_id, client_id, subject, revoked, expires) VALUES(?,?,?,?,?,?)`,
		t.JTI, t.FamilyID, t.ClientID, t.Subject, boolInt(t.Revoked), unix(t.ExpiresAt))
	return wrap("put access token", err)
}

// GetAccess implements Store.
func (s *SQLite) GetAccess(ctx context.Context, jti string) (AccessToken, error) {
	t := AccessToken{JTI: jti}
	var revoked int
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT family_id, client_id, subject, revoked, expires FROM access WHERE jti=?`, jti).
		Scan(&t.FamilyID, &t.ClientID, &t.Subject, &revoked, &expires)
	if err != nil {
		return AccessToken{}, notFound("get access token", err)
	}
	t.Revoked = revoked == 1
	t.ExpiresAt = time.Unix(0, expires)
	return t, nil
}

// RevokeAccess implements Store.
func (s *SQLite) RevokeAccess(ctx context.Context, t AccessToken) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO access(jti, family_id, client_id, subject, revoked, expires) VALUES(?,?,?,?,1,?)
		ON CONFLICT(jti) DO UPDATE SET revoked=1`, t.JTI, t.FamilyID, t.ClientID, t.Subject, unix(t.ExpiresAt))
	return wrap("revoke access token", err)
}

// RevokeSubject implements Store.
func (s *SQLite) RevokeSubject(ctx context.Context, subject string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke subject: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range []string{
		`UPDATE families SET revoked=1 WHERE subject=?`,
		`UPDATE access SET revoked=1 WHERE subject=?`,
	} {
		if _, err := tx.ExecContext(ctx, q, subject); err != nil {
			return fmt.Errorf("revoke subject: %w", err)
		}
	}
	return wrap("revoke subject", tx.Commit())
}

// DeleteExpired implements Store.
func (s *SQLite) DeleteExpired(ctx context.Context, now time.Time) error {
	for _, q := range []struct {
		sql string
		at  time.Time
	}{
		{`DELETE FROM codes WHERE expires < ?`, now.Add(-CodeGrace)},
		{`DELETE FROM refresh WHERE expires < ?`, now},
		{`DELETE FROM families WHERE expires < ?`, now},
		{`DELETE FROM access WHERE expires < ?`, now},
	} {
		if _, err := s.db.ExecContext(ctx, q.sql, unix(q.at)); err != nil {
			return fmt.Errorf("delete expired: %w", err)
		}
	}
	return nil
}

// Reset implements Store.
func (s *SQLite) Reset(ctx context.Context) error {
	for _, table := range []string{"clients", "client_activity", "codes", "families", "refresh", "access"} {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM `+table); err != nil {
			return fmt.Errorf("reset %s: %w", table, err)
		}
	}
	return nil
}

// Close implements Store.
func (s *SQLite) Close() error { return s.db.Close() }

func wrap(doing string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	return nil
}

func notFound(doing string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return fmt.Errorf("%s: %w", doing, err)
}
