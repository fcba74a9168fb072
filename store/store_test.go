package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"onecard/store"
	"onecard/store/storetest"
)

func TestMigrationsApplyOnBothDatabases(t *testing.T) {
	all, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no migrations embedded")
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		v, err := db.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v != all[len(all)-1].Version {
			t.Fatalf("version %d, want %d", v, all[len(all)-1].Version)
		}
		// A second run applies nothing.
		again, err := db.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 0 {
			t.Fatalf("second migrate applied %v", again)
		}
	})
}

func TestTxRollsBackAndUniqueIsDetected(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)
		insert := "INSERT INTO sites (code, name, time_zone, created_at) VALUES (?, ?, ?, ?) RETURNING id"
		boom := errors.New("boom")
		err := db.Tx(ctx, func(tx *store.Tx) error {
			if _, err := tx.Insert(ctx, insert, "a", "A", "Asia/Shanghai", now); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Tx returned %v, want boom", err)
		}
		var n int
		if err := db.Get(ctx, &n, "SELECT COUNT(*) FROM sites"); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("rolled-back insert left %d rows", n)
		}
		id, err := db.Insert(ctx, insert, "a", "A", "Asia/Shanghai", now)
		if err != nil || id == 0 {
			t.Fatalf("insert: id %d, %v", id, err)
		}
		_, err = db.Insert(ctx, insert, "a", "A again", "Asia/Shanghai", now)
		if !store.IsUnique(err) {
			t.Fatalf("duplicate code: IsUnique(%v) = false", err)
		}
		// Times come back in UTC, to the second at least.
		var at time.Time
		if err := db.Get(ctx, &at, "SELECT created_at FROM sites WHERE id = ?", id); err != nil {
			t.Fatal(err)
		}
		if !at.Equal(now) {
			t.Fatalf("created_at %v, want %v", at, now)
		}
	})
}

func TestForeignKeysAreEnforced(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		_, err := db.Exec(context.Background(), "INSERT INTO buildings (site_id, number, name) VALUES (?, ?, ?)", 999, 1, "x")
		if err == nil {
			t.Fatal("insert with a missing site succeeded; foreign keys are off")
		}
	})
}

func TestLikeEscapes(t *testing.T) {
	if got := store.Like(`50%_a\b`); got != `%50\%\_a\\b%` {
		t.Fatalf("Like = %q", got)
	}
}
