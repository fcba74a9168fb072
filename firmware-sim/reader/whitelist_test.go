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
