// Package storetest runs storage tests against every database onecard
// supports: SQLite always, PostgreSQL when ONECARD_TEST_POSTGRES holds a
// connection URL. Under CI (CI=true) a missing PostgreSQL fails the test
// instead of skipping it.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"onecard/store"
)

// EnvPostgres names the variable holding the test PostgreSQL URL.
const EnvPostgres = "ONECARD_TEST_POSTGRES"

// Each runs fn once per database, as subtests named "sqlite" and
// "postgres", each on a fresh, migrated database.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns a fresh migrated SQLite database in a temporary directory.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), store.Options{URL: "sqlite:" + filepath.Join(dir, "test.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// Postgres returns a fresh migrated PostgreSQL database: a schema of its
// own in the server named by ONECARD_TEST_POSTGRES, dropped afterwards.
// Without the variable it skips, or fails under CI.
func Postgres(t testing.TB) *store.DB {
	t.Helper()
	base := PostgresURL(t)
	ctx := context.Background()
	admin, err := store.Open(ctx, store.Options{URL: base, MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	schema := "t_" + randHex(8)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := store.Open(ctx, store.Options{URL: u.String(), MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		_, _ = admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// PostgresURL returns ONECARD_TEST_POSTGRES, skipping the test without it
// (failing it under CI).
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: under CI the PostgreSQL tests must run", EnvPostgres)
		}
		t.Skipf("%s is not set; skipping the PostgreSQL run", EnvPostgres)
	}
	return base
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
