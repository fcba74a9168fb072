package reader

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"onecard/fleet/proto"
)

// BenchmarkTap is a card presented, decided, queued and persisted, with a
// whitelist of 100 or 5,000 cards; the server acknowledges every 100
// events, as it would.
func BenchmarkTap(b *testing.B) {
	for _, bc := range []struct {
		name    string
		file    bool
		fsync   bool
		every   time.Duration
		entries int
	}{
		{"memory/100", false, false, 0, 100},
		{"file/100", true, false, 0, 100},
		{"file+fsync/100", true, true, 0, 100},
		{"file/5000", true, false, 0, 5000},
		{"file-every-1s/5000", true, false, time.Second, 5000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := Options{Site: "s1", ID: "gate-1", Zone: "gate", Fsync: bc.fsync, SaveEvery: bc.every}
			if bc.file {
				o.StateFile = filepath.Join(b.TempDir(), "state.json")
			}
			r, err := New(o)
			if err != nil {
				b.Fatal(err)
			}
			cards := make([]string, bc.entries)
			for i := range cards {
				cards[i] = fmt.Sprintf("04%06X", i)
				r.wl["gate"].put(proto.Entry{Card: cards[i], No: uint64(i + 1), Until: 4102444800, Sched: "always"})
			}
			i := 0
			for b.Loop() {
				if d := r.Tap(cards[i%len(cards)]); !d.Granted {
					b.Fatal(d)
				}
				if i++; i%100 == 0 {
					r.eventAck(uint64(i))
				}
			}
		})
	}
}
