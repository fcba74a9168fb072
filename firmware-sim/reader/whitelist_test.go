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
