package reader

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"onecard/fleet/proto"
)

// TestWhitelistAgainstAMap runs random puts and deletes (across several
// merges) on a whitelist and on a plain map, and compares them.
func TestWhitelistAgainstAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	card := func() string {
		switch rng.IntN(3) {
		case 0:
			return fmt.Sprintf("04%06X", rng.IntN(3000))
		case 1:
			return fmt.Sprintf("04%012X", rng.IntN(3000))
		}
		return fmt.Sprintf("04%018X", rng.IntN(3000))
	}
	scheds := []string{"always", "office", "night-shift"}
	var seed []proto.Entry
	for range 2000 {
		c := card()
		seed = append(seed, proto.Entry{Card: c, No: rng.Uint64N(1e6) + 1, From: 10, Until: 20, Sched: scheds[rng.IntN(3)]})
	}
	want := map[string]proto.Entry{}
	for _, e := range seed { // the last of a card given twice wins
		want[e.Card] = e
	}
	b := newBuilder(0)
	b.add(seed)
	w := b.done()
	for i := range 5000 {
		c := card()
		if rng.IntN(3) == 0 {
			w.del(c)
			delete(want, c)
		} else {
			e := proto.Entry{Card: c, No: uint64(i + 1), From: int64(i), Until: int64(i + 5), Sched: scheds[rng.IntN(3)], Blocked: rng.IntN(2) == 0}
			w.put(e)
			want[c] = e
		}
		if w.len() != len(want) {
			t.Fatalf("after %d operations: %d entries, want %d", i+1, w.len(), len(want))
		}
		probe := card()
		got, ok := w.get(probe)
		if we, wok := want[probe]; ok != wok || got != we {
			t.Fatalf("get(%s) = %+v %v, want %+v %v", probe, got, ok, we, wok)
		}
	}
	var wantList []proto.Entry
	for _, e := range want {
		wantList = append(wantList, e)
	}
	slices.SortFunc(wantList, func(a, b proto.Entry) int { return strings.Compare(a.Card, b.Card) })
	if got := w.entries(); !reflect.DeepEqual(got, wantList) {
		t.Fatalf("entries differ: %d vs %d", len(got), len(wantList))
	}
	if _, ok := w.get("zz"); ok {
		t.Error("a malformed card was found")
	}
}

// scanRecord must take exactly the rows proto.ParseRow takes, into the
// records the entries make.
func checkScanRecord(t *testing.T, row string) {
	t.Helper()
	w := newWhitelist()
	e, perr := proto.ParseRow(row)
	r, rest, ok := w.scanRecord(row)
	switch {
	case perr != nil && ok && rest == "":
		t.Fatalf("%q: taken by the reader, refused by ParseRow: %v", row, perr)
	case perr == nil && (!ok || rest != ""):
		t.Fatalf("%q: refused by the reader (ok %v, rest %q), taken by ParseRow", row, ok, rest)
	case perr == nil && r != w.record(e):
		t.Fatalf("%q: record %+v, want %+v", row, r, w.record(e))
	}
}

func TestScanRecordAgreesWithParseRow(t *testing.T) {
	for _, row := range []string{
		"04A23B1C,7,1700000000,1800000000,always,0",
		"04A23B1C2D3E4F,1,0,1,office,1",
		"04A23B1C2D3E4F5A6B7C,18446744073709551615,0,9223372036854775807,night-shift,0",
		"04a23b1c,7,1700000000,1800000000,always,0", // lower case
		"04A23B1,7,1700000000,1800000000,always,0",  // odd length
		"04A23B1C,0,1700000000,1800000000,always,0", // number 0
		"04A23B1C,7,1800000000,1800000000,always,0", // empty validity
		"04A23B1C,7,-1,1800000000,always,0",
		"04A23B1C,+7,1700000000,1800000000,always,0",
		"04A23B1C,7,1700000000,9223372036854775808,always,0",
		"04A23B1C,18446744073709551616,1,2,always,0",
		"04A23B1C,7,1700000000,1800000000,Always,0",
		"04A23B1C,7,1700000000,1800000000,-x,0",
		"04A23B1C,7,1700000000,1800000000,always,2",
		"04A23B1C,7,1700000000,1800000000,always,",
		"04A23B1C,7,1700000000,1800000000,always",
		"04A23B1C,7,1700000000,1800000000,,0",
		"04A23B1C,,1700000000,1800000000,always,0",
		"",
		",,,,,",
	} {
		checkScanRecord(t, row)
	}
	// A chunk with a bad row adds nothing.
	b := newBuilder(0)
	if err := b.addRows("04A23B1C,7,1,2,always,0\n04A23B1D,0,1,2,always,0", 2); err == nil || len(b.recs) != 0 {
		t.Fatalf("a bad second row: %v, %d records kept", err, len(b.recs))
	}
	if err := b.addRows("04A23B1C,7,1,2,always,0", 2); err == nil || len(b.recs) != 0 {
		t.Fatalf("fewer rows than announced: %v, %d records kept", err, len(b.recs))
	}
	if err := b.addRows("04A23B1C,7,1,2,always,0\n04A23B1D,8,1,2,always,1", 2); err != nil || len(b.recs) != 2 {
		t.Fatalf("two good rows: %v, %d records", err, len(b.recs))
	}
}

func FuzzScanRecord(f *testing.F) {
	f.Add("04A23B1C,7,1700000000,1800000000,always,0")
	f.Add("04A23B1C2D3E4F,1,0,1,office,1")
	f.Add("04A23B1C,18446744073709551615,0,9223372036854775807,night-shift,0")
	f.Fuzz(func(t *testing.T, row string) {
		if strings.Contains(row, "\n") {
			return // rows are split on newlines before they get here
		}
		checkScanRecord(t, row)
	})
}

// A snapshot's chunks in card order are taken as they are; out of order,
// or with a card given twice, they are sorted and the last given wins.
func TestBuilderOrder(t *testing.T) {
	row := func(i, no int) string { return fmt.Sprintf("04%06X,%d,10,20,always,0", i, no) }
	rows := func(from, to, no int) string {
		var rs []string
		for i := from; i < to; i++ {
			rs = append(rs, row(i, no))
		}
		return strings.Join(rs, "\n")
	}
	for _, tc := range []struct {
		name    string
		chunks  []string
		ordered bool
		n       int
		lastNo  uint64 // of card 99
	}{
		{"in order", []string{rows(0, 50, 1), rows(50, 100, 1)}, true, 100, 1},
		{"reversed", []string{rows(50, 100, 1), rows(0, 50, 1)}, false, 100, 1},
		{"a card twice", []string{rows(0, 100, 1), rows(99, 100, 2)}, false, 100, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder(0)
			for _, c := range tc.chunks {
				if err := b.addRows(c, strings.Count(c, "\n")+1); err != nil {
					t.Fatal(err)
				}
			}
			if b.ordered != tc.ordered {
				t.Errorf("ordered %t, want %t", b.ordered, tc.ordered)
			}
			w := b.done()
			if w.len() != tc.n || len(w.base) != tc.n {
				t.Fatalf("%d entries (%d held), want %d", w.len(), len(w.base), tc.n)
			}
			if !slices.IsSortedFunc(w.base, func(x, y record) int { return cmpUID(x.card, y.card) }) {
				t.Error("not in card order")
			}
			if e, ok := w.get(fmt.Sprintf("04%06X", 99)); !ok || e.No != tc.lastNo {
				t.Errorf("card 99: %+v %t, want no %d", e, ok, tc.lastNo)
			}
		})
	}
}
