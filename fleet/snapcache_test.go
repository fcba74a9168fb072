package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"onecard/fleet/proto"
	"onecard/store"
	"onecard/store/storetest"
)

// TestSnapshotCache checks that the whitelist kept in memory for snapshots
// stays exactly what the database holds through puts, updates and
// deletes, in chunks no larger than a snapshot chunk, and is dropped, not
// trusted, when a change reaches the database without it.
func TestSnapshotCache(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := setupWorld(t, db, true, nil)
		for i := range 3 {
			var ops []proto.Op
			for j := range 400 {
				ops = append(ops, put(fmt.Sprintf("04%06X", i*400+j), uint64(i*400+j+1), false))
			}
			w.change(t, "big", ops...)
		}
		if err := w.fleet.LoadZoneCache(ctx, "big"); err != nil {
			t.Fatal(err)
		}
		w.checkCache(t, "big")

		r := rand.New(rand.NewPCG(1, 2))
		next := 1200
		for range 300 {
			var ops []proto.Op
			for range 1 + r.IntN(3) {
				switch k := r.IntN(4); k {
				case 0: // a new card
					ops = append(ops, put(fmt.Sprintf("04%06X", next), uint64(next+1), false))
					next++
				case 1: // a card changed
					ops = append(ops, put(fmt.Sprintf("04%06X", r.IntN(next)), uint64(r.IntN(1000)+1), r.IntN(2) == 0))
				default: // a card removed, perhaps one already gone
					ops = append(ops, proto.Op{Op: "del", Entry: proto.Entry{Card: fmt.Sprintf("04%06X", r.IntN(next))}})
				}
			}
			w.change(t, "big", ops...)
		}
		w.checkCache(t, "big")

		// A change rolled back leaves the cache as it was.
		seq, _, _ := w.fleet.CachedZone(ctx, "big")
		undo := errors.New("undo")
		err := db.Tx(ctx, func(tx *store.Tx) error {
			if _, err := w.fleet.Change(ctx, tx, "big", []proto.Op{put("05000001", 1, false)}); err != nil {
				return err
			}
			return undo
		})
		if !errors.Is(err, undo) {
			t.Fatal(err)
		}
		if now, _, ok := w.fleet.CachedZone(ctx, "big"); !ok || now != seq {
			t.Fatalf("after a rollback: cached seq %d (held %v), want %d", now, ok, seq)
		}
		w.checkCache(t, "big")

		// A change made behind the service's back (another process): the
		// next change finds the cache a sequence behind and drops it.
		if _, err := db.Exec(ctx, "UPDATE zones SET seq = seq + 1 WHERE code = 'big'"); err != nil {
			t.Fatal(err)
		}
		w.change(t, "big", put("05000002", 2, false))
		if _, _, ok := w.fleet.CachedZone(ctx, "big"); ok {
			t.Fatal("the cache still holds a zone changed behind its back")
		}
	})
}

// checkCache compares the zone held in memory with the database.
func (w *world) checkCache(t *testing.T, zone string) {
	t.Helper()
	ctx := context.Background()
	seq, chunks, ok := w.fleet.CachedZone(ctx, zone)
	if !ok {
		t.Fatal("zone not held in memory")
	}
	var dbSeq int64
	if err := w.db.Get(ctx, &dbSeq, "SELECT seq FROM zones WHERE code = ?", zone); err != nil {
		t.Fatal(err)
	}
	var want []string
	if err := w.db.Select(ctx, &want, "SELECT w.entry FROM wl_entries w JOIN zones z ON z.id = w.zone_id WHERE z.code = ?", zone); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, c := range chunks {
		if len(c) == 0 || len(c) > proto.MaxSnapshotEntries {
			t.Errorf("chunk %d holds %d rows", i, len(c))
		}
		got = append(got, c...)
	}
	slices.Sort(got)
	slices.Sort(want)
	if seq != dbSeq || !slices.Equal(got, want) {
		t.Fatalf("cached: seq %d, %d rows; database: seq %d, %d rows", seq, len(got), dbSeq, len(want))
	}
}
