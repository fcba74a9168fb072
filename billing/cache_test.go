package billing_test

import (
	"context"
	"testing"
	"time"

	"onecard/billing"
	"onecard/store"
	"onecard/store/storetest"
)

// The kiosk's cached account follows every write this process makes to
// the books at once, and a write it cannot see (another process) within
// the TTL.
func TestCachedAccountFollowsTheBooks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bk := newBooks(t, db)
		ctx := bk.cashier
		if _, err := bk.b.Generate(ctx, "2026-11"); err != nil {
			t.Fatal(err)
		}
		read := func() (billing.Account, uint64) {
			t.Helper()
			a, stamp, err := bk.b.CachedAccount(ctx, "1-1-101")
			if err != nil {
				t.Fatal(err)
			}
			return a, stamp
		}
		a, s1 := read()
		if a.DueFen != 22375 || len(a.Open) != 1 {
			t.Fatalf("account %+v", a)
		}
		if _, s := read(); s != s1 {
			t.Fatalf("unchanged books, new reading: %d then %d", s1, s)
		}

		// A payment: the bill is paid on the next reading.
		if _, err := bk.b.Pay(ctx, billing.PayInput{IdemKey: "k-cache-1", Unit: "1-1-101", AmountFen: 22375, Method: "cash", TenderedFen: 22375}); err != nil {
			t.Fatal(err)
		}
		a, s2 := read()
		if a.DueFen != 0 || len(a.Open) != 0 || len(a.Paid) != 1 || s2 == s1 {
			t.Fatalf("after paying: %+v (stamp %d, was %d)", a, s2, s1)
		}

		// A bill added inside another package's transaction (a card fee).
		err := db.Tx(context.Background(), func(tx *store.Tx) error {
			_, err := bk.b.AddBillTx(ctx, tx, billing.BillInput{Unit: "1-1-101", Item: "card_fee", Period: "2026-12"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if a, _ := read(); a.DueFen != 2000 {
			t.Fatalf("after the card fee: due %d", a.DueFen)
		}

		// Another process's write (here, straight to the database): seen
		// once the reading is older than the TTL.
		if _, err := db.Exec(context.Background(), "UPDATE bills SET amount_fen = 2500 WHERE unit_id = (SELECT id FROM units WHERE code = '1-1-101') AND state = 'open'"); err != nil {
			t.Fatal(err)
		}
		clock := bk.b.Clock()
		bk.b.SetClock(func() time.Time { return clock().Add(3 * time.Second) })
		if a, _ := read(); a.DueFen != 2500 {
			t.Fatalf("another process's write, after the TTL: due %d", a.DueFen)
		}
	})
}
