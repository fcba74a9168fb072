package fleet_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"onecard/firmware-sim/reader"
	"onecard/fleet"
	"onecard/fleet/proto"
	"onecard/store"
	"onecard/store/storetest"
)

// BenchmarkCatchUp measures two catch-ups on the embedded broker, each
// against a floor in the same run: the same messages (count and sizes)
// published through the same broker to a bare client, until it has them
// all.
//
//   - offline: a reader misses C changes (default 1,000; full size
//     ONECARD_BENCH_CHANGES=10000), then reconnects; time until it has
//     applied the last one. ONECARD_BENCH_ROUNDS times (default 5), each
//     followed by its floor; the medians of the rounds are reported.
//   - snapshot: a new reader joins a zone of E entries (default 10,000;
//     full size ONECARD_BENCH_ENTRIES=100000); time until it has applied
//     the snapshot. The zone was filled before the server started, which
//     has loaded it into memory (warm); then another new reader joins
//     once the server has forgotten it (cold: read from the database, as
//     straight after a start).
//
// The messages are recorded by a monitor in an untimed first round of
// each (it would take the broker's and the machine's time in the timed
// one: the floor has no monitor).
func BenchmarkCatchUp(b *testing.B) {
	changes := envInt("ONECARD_BENCH_CHANGES", 1000)
	rounds := envInt("ONECARD_BENCH_ROUNDS", 5)
	entries := envInt("ONECARD_BENCH_ENTRIES", 10000)
	for b.Loop() {
		db := storetest.SQLite(b)
		w := newBenchWorld(b, db, []fleet.NewDevice{
			{Code: "late-1", Kind: "reader", Zones: []string{"gate"}},
			{Code: "new-1", Kind: "reader", Zones: []string{"big"}},
			{Code: "new-2", Kind: "reader", Zones: []string{"big"}},
			{Code: "new-3", Kind: "reader", Zones: []string{"big"}},
			{Code: "floor-1", Kind: "reader", Zones: []string{"floor"}},
		})
		preload(b, db, w, "big", entries)
		ctx, cancel := context.WithCancel(context.Background())
		w.startService(b, ctx)
		for deadline := time.Now().Add(time.Minute); !w.fleet.Warmed(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("whitelists never loaded")
			}
		}

		// Offline across many changes, again and again: the first time a
		// monitor records what the reader is sent (for the floor to send
		// again); then, timed, the same cards change again and nothing
		// else listens, and each time the floor follows at once. The
		// offline case takes milliseconds, where the machine's noise is
		// as large as what is measured: several rounds, each against its
		// own floor, give a median that means something.
		late := startReader(b, ctx, w, "late-1", "gate")
		w.waitOnline(b, late)
		var offline, offFloor []time.Duration
		var offRatios []float64
		var offSent [][]byte
		var offSnaps int
		for round := range rounds + 1 {
			late.Offline(true)
			// Until the server has its will, it may still send it what it
			// misses, before the count below begins.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				if d, err := w.fleet.Device(ctx, "late-1"); err == nil && !d.Online && !late.Online() {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("the server never saw late-1 go offline")
				}
			}
			var last uint64
			for i := 0; i < changes; i++ {
				last = w.change(b, "gate", put(fmt.Sprintf("04%06X", i), uint64(round*changes+i+1), false))
			}
			var sent func() [][]byte
			if round == 0 {
				sent = w.countSent(b, "late-1")
			}
			start := time.Now()
			late.Offline(false)
			until(func() bool { return late.Applied()["gate"] == last })
			took := time.Since(start)
			if round == 0 {
				offSent, offSnaps = firstSnapshot(sent())
				continue
			}
			floor := w.floorTransfer(b, offSent)
			offline, offFloor = append(offline, took), append(offFloor, floor)
			offRatios = append(offRatios, float64(took)/float64(floor))
		}

		// New readers and a big zone: the first with the monitor, then
		// timed, warm and cold.
		newReader := func(id string, monitor bool) (time.Duration, [][]byte) {
			sent := func() [][]byte { return nil }
			if monitor {
				sent = w.countSent(b, id)
			}
			start := time.Now()
			nr := startReader(b, ctx, w, id, "big")
			until(func() bool { return nr.Whitelist("big") == entries })
			return time.Since(start), sent()
		}
		_, recorded := newReader("new-1", true)
		snapSent, snapSnaps := firstSnapshot(recorded)
		snap, _ := newReader("new-2", false)
		w.fleet.DropCache()
		cold, _ := newReader("new-3", false)

		snapFloor := w.floorTransfer(b, snapSent)
		cancel()
		b.ReportMetric(float64(median(offline))/1e6, "offline-ms")
		b.ReportMetric(float64(median(offFloor))/1e6, "offline-floor-ms")
		b.ReportMetric(median(offRatios), "offline-ratio")
		b.ReportMetric(float64(size(offSent)), "offline-bytes")
		b.ReportMetric(float64(len(offSent)), "offline-msgs")
		b.ReportMetric(float64(len(snapSent)), "snapshot-msgs")
		b.ReportMetric(float64(offSnaps), "offline-snapshots-recorded")
		b.ReportMetric(float64(snapSnaps), "snapshot-snapshots-recorded")
		b.ReportMetric(float64(snap.Milliseconds()), "snapshot-ms")
		b.ReportMetric(float64(snapFloor.Milliseconds()), "snapshot-floor-ms")
		b.ReportMetric(float64(snap)/float64(snapFloor), "snapshot-ratio")
		b.ReportMetric(float64(size(snapSent)), "snapshot-bytes")
		b.ReportMetric(float64(cold.Milliseconds()), "cold-snapshot-ms")
		b.ReportMetric(float64(cold)/float64(snapFloor), "cold-snapshot-ratio")
	}
}

// median of a run's values (sorted in place).
func median[T cmp.Ordered](v []T) T {
	slices.Sort(v)
	return v[len(v)/2]
}

// until polls cond until it holds, finely: the floor's end is a channel,
// and polling every millisecond added up to one (a third of the offline
// case) to onecard's time.
func until(cond func() bool) {
	for !cond() {
		time.Sleep(50 * time.Microsecond)
	}
}

func startReader(b *testing.B, ctx context.Context, w *world, id, zone string) *reader.Reader {
	r, err := reader.New(reader.Options{Broker: w.url, Site: w.site, ID: id, Secret: w.secrets[id], Zone: zone, Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	go r.Run(ctx)
	return r
}

func (w *world) waitOnline(b *testing.B, r *reader.Reader) {
	for deadline := time.Now().Add(10 * time.Second); !r.Online(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("reader never came online")
		}
	}
}

// countSent records the whitelist messages sent to one device from now on
// (its wl and snap topics), as a monitor sees them. The monitor receives
// them alongside the device and may lag it: the messages are returned
// once none has come for a quarter of a second. (Returning as soon as
// the device was current lost the last few now and then, and the floor,
// sending fewer, came out too fast.)
func (w *world) countSent(b *testing.B, id string) func() [][]byte {
	var mu sync.Mutex
	var got [][]byte
	var last time.Time
	c := dialBench(b, w.url, "count."+id, fleet.ServerUser, serverSecret)
	record := func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		got, last = append(got, m.Payload()), time.Now()
		mu.Unlock()
	}
	for _, k := range []string{proto.KindWL, proto.KindSnap} {
		// fleet's subscribe retries a subscription mochi refuses by
		// mistake: a monitor that missed a topic would make the floor
		// send less than the device got.
		if err := fleet.Subscribe(c, w.topics.Device(id, k), record); err != nil {
			b.Fatalf("monitor: %v", err)
		}
	}
	return func() [][]byte {
		for {
			mu.Lock()
			quiet := len(got) > 0 && time.Since(last) > 250*time.Millisecond
			mu.Unlock()
			if quiet {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		c.Disconnect(0)
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

// firstSnapshot keeps, of recorded messages, those of the first snapshot
// (and any that are not snapshot chunks), and says how many snapshots were
// recorded. Now and then the untimed recording round gets a second
// snapshot (a sync request crossing the first); the floor, which sends
// what was recorded, would then send twice a timed round's bytes.
// Keeping one errs against onecard: a timed round that gets two is timed
// against a floor of one.
func firstSnapshot(msgs [][]byte) ([][]byte, int) {
	var first string
	ids := map[string]bool{}
	var kept [][]byte
	for _, m := range msgs {
		h, _, err := proto.SnapshotChunk(m)
		if err != nil {
			kept = append(kept, m)
			continue
		}
		ids[h.Snapshot] = true
		if first == "" {
			first = h.Snapshot
		}
		if h.Snapshot == first {
			kept = append(kept, m)
		}
	}
	return kept, len(ids)
}

func size(msgs [][]byte) (n int64) {
	for _, m := range msgs {
		n += int64(len(m))
	}
	return n
}

// floorTransfer sends the same messages through the broker to a bare
// client, as fast as QoS 1 allows with the server's window of
// unacknowledged publishes, and times their arrival, from the bare
// client's connecting and subscribing, as the reader's time runs from its
// connecting.
func (w *world) floorTransfer(b *testing.B, payloads [][]byte) time.Duration {
	msgs := int64(len(payloads))
	if msgs == 0 {
		return time.Nanosecond
	}
	var got atomic.Int64
	done := make(chan struct{})
	tx := dialBench(b, w.url, "floor.tx", fleet.ServerUser, serverSecret)
	start := time.Now()
	rx := dialBench(b, w.url, "floor-1", "floor-1", w.secrets["floor-1"])
	rx.Subscribe(w.topics.Device("floor-1", proto.KindSnap), 1, func(_ mqtt.Client, _ mqtt.Message) {
		if got.Add(1) == msgs {
			close(done)
		}
	}).Wait()
	// As many in flight as the server allows a snapshot (16).
	var inflight []mqtt.Token
	for _, p := range payloads {
		if len(inflight) == 16 {
			inflight[0].Wait()
			inflight = inflight[1:]
		}
		inflight = append(inflight, tx.Publish(w.topics.Device("floor-1", proto.KindSnap), 1, false, p))
	}
	<-done
	d := time.Since(start)
	tx.Disconnect(0)
	rx.Disconnect(0)
	return d
}

// preload fills a zone with n entries straight into its tables, as years
// of changes would have left it.
func preload(b *testing.B, db *store.DB, w *world, zone string, n int) {
	ctx := context.Background()
	now := time.Now().Unix()
	err := db.Tx(ctx, func(tx *store.Tx) error {
		zid, err := w.fleet.EnsureZone(ctx, tx, zone, "")
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			card := fmt.Sprintf("05%06X", i)
			e := fmt.Sprintf("%s,%d,%d,%d,always,0", card, i+1, now-3600, now+86400*365)
			if _, err := tx.Exec(ctx, "INSERT INTO wl_entries (zone_id, card, entry, seq) VALUES (?, ?, ?, 1)", zid, card, e); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, "UPDATE zones SET seq = 1 WHERE id = ?", zid)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}
