// Package store opens onecard's database (SQLite by default, PostgreSQL at
// scale), applies the embedded migrations and runs transactions. Domain
// packages own their tables and write their own SQL through the *DB it
// returns; store knows nothing of their rules.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DB is an open database. SQL is written with ? placeholders; sqlx's Rebind
// turns them into $n for PostgreSQL, which the helpers below do for you.
type DB struct {
	*sqlx.DB
	Dialect string
	// Path is the SQLite file, empty on PostgreSQL.
	Path string

	stmtMu sync.RWMutex
	stmts  map[string]*sqlx.Stmt // prepared queries, by text
}

// Options say which database to open.
type Options struct {
	// URL is "postgres://…" for PostgreSQL, or "sqlite:PATH" / a plain file
	// path for SQLite. Empty means DataDir/onecard.db.
	URL     string
	DataDir string
	// MaxOpenConns caps the pool (0: a sensible default per dialect).
	MaxOpenConns int
}

// Open opens the database and checks that it answers. It does not migrate.
func Open(ctx context.Context, o Options) (*DB, error) {
	switch {
	case strings.HasPrefix(o.URL, "postgres://"), strings.HasPrefix(o.URL, "postgresql://"):
		return openPostgres(ctx, o)
	default:
		path := strings.TrimPrefix(o.URL, "sqlite:")
		if path == "" {
			if o.DataDir == "" {
				return nil, errors.New("store: no database URL and no data directory")
			}
			path = filepath.Join(o.DataDir, "onecard.db")
		}
		return openSQLite(ctx, path, o)
	}
}

func openSQLite(ctx context.Context, path string, o Options) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	// Pragmas are set per connection by the driver, before anything else
	// runs: foreign keys on, WAL so readers never wait for the writer, a busy
	// timeout instead of immediate SQLITE_BUSY, and BEGIN IMMEDIATE so two
	// writers queue instead of deadlocking on a lock upgrade.
	dsn := "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate&_time_format=sqlite"
	x, err := sqlx.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	n := o.MaxOpenConns
	if n == 0 {
		n = 8
	}
	x.SetMaxOpenConns(n)
	x.SetMaxIdleConns(n)
	x.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{DB: x, Dialect: SQLite, Path: path}
	if err := x.PingContext(ctx); err != nil {
		x.Close()
		return nil, fmt.Errorf("store: ping sqlite %s: %w", path, err)
	}
	return db, nil
}

func openPostgres(ctx context.Context, o Options) (*DB, error) {
	x, err := sqlx.Open("postgres", o.URL)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	n := o.MaxOpenConns
	if n == 0 {
		n = 20
	}
	x.SetMaxOpenConns(n)
	x.SetMaxIdleConns(n / 2)
	x.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{DB: x, Dialect: Postgres}
	if err := x.PingContext(ctx); err != nil {
		x.Close()
		return nil, fmt.Errorf("store: ping postgres: %w", err)
	}
	// Times are stored in UTC; say so to the session as well, so that
	// now() and timestamp literals agree with what Go writes.
	if _, err := x.ExecContext(ctx, "SET TIME ZONE 'UTC'"); err != nil {
		x.Close()
		return nil, fmt.Errorf("store: set time zone: %w", err)
	}
	return db, nil
}

// Tx runs fn in a transaction, committing if it returns nil and rolling back
// otherwise.
func (db *DB) Tx(ctx context.Context, fn func(tx *Tx) error) error {
	x, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	tx := &Tx{Tx: x, Dialect: db.Dialect, db: db}
	defer func() {
		for _, q := range tx.misses {
			db.stmt(ctx, q)
		}
	}()
	if err := fn(tx); err != nil {
		_ = x.Rollback()
		return err
	}
	if err := x.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	for _, f := range tx.after {
		f()
	}
	return nil
}

// Tx is a transaction with the same ?-placeholder helpers as DB.
type Tx struct {
	*sqlx.Tx
	Dialect string
	db      *DB
	after   []func()
	misses  []string // queries with no prepared statement yet
}

// stmt is db's prepared statement for query, in this transaction (on its
// connection, where database/sql reuses it once prepared there); nil if
// there is none yet. A statement is never prepared from inside a
// transaction: that takes another connection from the pool, which may be
// waiting for this transaction's lock. Misses are prepared after it ends.
func (tx *Tx) stmt(ctx context.Context, query string) *sqlx.Stmt {
	if tx.db == nil {
		return nil
	}
	tx.db.stmtMu.RLock()
	st, ok := tx.db.stmts[query]
	tx.db.stmtMu.RUnlock()
	if !ok {
		tx.misses = append(tx.misses, query)
		return nil
	}
	return tx.StmtxContext(ctx, st)
}

// AfterCommit runs f once the transaction has committed (not if it rolls
// back): waking a worker for what the transaction queued.
func (tx *Tx) AfterCommit(f func()) { tx.after = append(tx.after, f) }

// Q is what both DB and Tx offer: query with ? placeholders, rebound for the
// dialect.
type Q interface {
	Get(ctx context.Context, dest any, query string, args ...any) error
	Select(ctx context.Context, dest any, query string, args ...any) error
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
	// Insert runs an INSERT … RETURNING id and returns the id.
	Insert(ctx context.Context, query string, args ...any) (int64, error)
	Dialectal
}

// Dialectal reports the dialect behind a Q.
type Dialectal interface{ DialectName() string }

var (
	_ Q = (*DB)(nil)
	_ Q = (*Tx)(nil)
)

// DialectName returns SQLite or Postgres.
func (db *DB) DialectName() string { return db.Dialect }

// DialectName returns SQLite or Postgres.
func (tx *Tx) DialectName() string { return tx.Dialect }

// Get fetches one row into dest; no row is ErrNoRows (see NotFound).
func (db *DB) Get(ctx context.Context, dest any, query string, args ...any) error {
	if st := db.stmt(ctx, query); st != nil {
		return st.GetContext(ctx, dest, args...)
	}
	return db.GetContext(ctx, dest, db.Rebind(query), args...)
}

// Select fetches rows into dest.
func (db *DB) Select(ctx context.Context, dest any, query string, args ...any) error {
	if st := db.stmt(ctx, query); st != nil {
		return st.SelectContext(ctx, dest, args...)
	}
	return db.SelectContext(ctx, dest, db.Rebind(query), args...)
}

// maxStmts bounds the prepared statements kept (queries built on the fly,
// such as searches, come in a bounded number of shapes).
const maxStmts = 512

// stmt returns the statement for query, prepared once and kept: parsing
// and planning every query anew was a third of a busy page's CPU on
// SQLite. nil (the caller runs the query plainly) if it cannot be
// prepared or the cache is full.
func (db *DB) stmt(ctx context.Context, query string) *sqlx.Stmt {
	db.stmtMu.RLock()
	st, ok := db.stmts[query]
	db.stmtMu.RUnlock()
	if ok {
		return st
	}
	db.stmtMu.RLock()
	full := len(db.stmts) >= maxStmts
	db.stmtMu.RUnlock()
	if full {
		return nil
	}
	// Prepared without the lock held: preparing takes a connection from
	// the pool, which may wait for a transaction that itself waits for
	// the lock (every connection busy). Two preparing at once keep one.
	st, err := db.PreparexContext(context.WithoutCancel(ctx), db.Rebind(query))
	if err != nil {
		return nil
	}
	db.stmtMu.Lock()
	if old, ok := db.stmts[query]; ok {
		db.stmtMu.Unlock()
		st.Close() // outside the lock: closing waits for its connections
		return old
	}
	if db.stmts == nil {
		db.stmts = map[string]*sqlx.Stmt{}
	}
	db.stmts[query] = st
	db.stmtMu.Unlock()
	return st
}

// Exec runs a statement.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.ExecContext(ctx, db.Rebind(query), args...)
}

// Insert runs an INSERT … RETURNING id.
func (db *DB) Insert(ctx context.Context, query string, args ...any) (int64, error) {
	var id int64
	err := db.QueryRowxContext(ctx, db.Rebind(query), args...).Scan(&id)
	return id, err
}

// Get fetches one row into dest.
func (tx *Tx) Get(ctx context.Context, dest any, query string, args ...any) error {
	if st := tx.stmt(ctx, query); st != nil {
		return st.GetContext(ctx, dest, args...)
	}
	return tx.GetContext(ctx, dest, tx.Rebind(query), args...)
}

// Select fetches rows into dest.
func (tx *Tx) Select(ctx context.Context, dest any, query string, args ...any) error {
	if st := tx.stmt(ctx, query); st != nil {
		return st.SelectContext(ctx, dest, args...)
	}
	return tx.SelectContext(ctx, dest, tx.Rebind(query), args...)
}

// Exec runs a statement.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := tx.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, tx.Rebind(query), args...)
}

// Insert runs an INSERT … RETURNING id.
func (tx *Tx) Insert(ctx context.Context, query string, args ...any) (int64, error) {
	var id int64
	err := tx.QueryRowxContext(ctx, tx.Rebind(query), args...).Scan(&id)
	return id, err
}

// IsUnique reports whether err is a unique-constraint violation, in either
// dialect.
func IsUnique(err error) bool {
	if err == nil {
		return false
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var ce interface{ Code() int }
	if errors.As(err, &ce) {
		// SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY.
		return ce.Code() == 2067 || ce.Code() == 1555
	}
	return false
}

// IsNoRows reports whether err says a query found no row.
func IsNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// Like escapes s for use in a LIKE pattern with ESCAPE '\'.
func Like(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}
