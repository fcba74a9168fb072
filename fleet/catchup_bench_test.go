package fleet_test

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
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
// against floors measured in the same run with two bare clients on the
// same broker:
//
//   - the floor (the target's): the whole pattern of a catch-up, with no
//     onecard logic. The bare device publishes a birth of the reader's
//     size; the bare server, subscribed to it, answers with the same
//     messages (count and sizes) that onecard sent, as fast as QoS 1
//     allows with onecard's window of 16; timed from the device's
//     connecting until it has them all.
//   - the bare floor: the same messages alone, sent as soon as the device
//     has subscribed (no birth, no round trip): what the issue's "the same
//     bytes through the bare broker" means read most strictly.
//
// The cases:
//
//   - offline: a reader misses C changes (default 1,000; full size
//     ONECARD_BENCH_CHANGES=10000), then reconnects; time until it has
//     applied the last one. ONECARD_BENCH_ROUNDS times (default 5), each
//     followed by its floors; the medians of the rounds are reported, and
//     the CPU time the process used in onecard's rounds and the floor's
//     (on a machine of two cores, the CPU onecard's work takes is time).
//   - snapshot: a new reader joins a zone of E entries (default 10,000;
//     full size ONECARD_BENCH_ENTRIES=100000); time until it has applied
//     the snapshot. The zone was filled before the server started, which
//     has loaded it into memory (warm: a new reader in each of the rounds,
//     reported as above); then one more new reader joins once the server
//     has forgotten it (cold: read from the database, as straight after a
//     start; once, against a floor of its own).
//
// The messages are recorded by a monitor in an untimed first round of
// each (it would take the broker's and the machine's time in the timed
// one: the floor has no monitor). Every timed round, onecard's and the
// floors', starts after a garbage collection, and onecard's once the
// changes' broadcasts are all out: neither is left over from what came
// before, to fall at random into one side's time.
func BenchmarkCatchUp(b *testing.B) {
	changes := envInt("ONECARD_BENCH_CHANGES", 1000)
	rounds := envInt("ONECARD_BENCH_ROUNDS", 5)
	entries := envInt("ONECARD_BENCH_ENTRIES", 10000)
	for b.Loop() {
		db := storetest.SQLite(b)
		devs := []fleet.NewDevice{{Code: "late-1", Kind: "reader", Zones: []string{"gate"}}}
		for i := range rounds + 2 { // recording, timed rounds, cold
			devs = append(devs, fleet.NewDevice{Code: fmt.Sprintf("new-%d", i), Kind: "reader", Zones: []string{"big"}})
		}
		w := newBenchWorld(b, db, devs)
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
		var offline, offFloor, offBare, offCPU, offFloorCPU []time.Duration
		var offRatios, offBareRatios []float64
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
			published := w.fleet.Stats().Published.Load()
			for i := 0; i < changes; i++ {
				last = w.change(b, "gate", put(fmt.Sprintf("04%06X", i), uint64(round*changes+i+1), false))
			}
			var sent func() [][]byte
			if round == 0 {
				sent = w.countSent(b, "late-1")
			}
			// The changes' broadcasts (to the zone: the reader, subscribed
			// to it again, would get them too) are all out, and no garbage
			// of making them is left to collect, before the clock starts.
			for deadline := time.Now().Add(time.Minute); w.fleet.Stats().Published.Load()-published < int64(changes); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					b.Fatal("the changes were never all published")
				}
			}
			runtime.GC()
			cpu0 := cpuNow()
			start := time.Now()
			late.Offline(false)
			if err := late.WaitApplied(ctx, "gate", last); err != nil {
				b.Fatal(err)
			}
			took := time.Since(start)
			cpuOn := cpuNow() - cpu0
			if round == 0 {
				offSent, offSnaps = firstSnapshot(sent())
				continue
			}
			floor, cpuFl := w.floorTransfer(b, offSent, birth("gate", last))
			bare, _ := w.floorTransfer(b, offSent, nil)
			offline, offFloor, offBare = append(offline, took), append(offFloor, floor), append(offBare, bare)
			offRatios, offBareRatios = append(offRatios, float64(took)/float64(floor)), append(offBareRatios, float64(took)/float64(bare))
			offCPU, offFloorCPU = append(offCPU, cpuOn), append(offFloorCPU, cpuFl)
		}

		// New readers and a big zone: the first with the monitor, then
		// timed, warm (rounds, each followed by its floors, as above) and
		// cold.
		newReader := func(id string, monitor bool) (time.Duration, [][]byte) {
			sent := func() [][]byte { return nil }
			if monitor {
				sent = w.countSent(b, id)
			}
			runtime.GC()
			start := time.Now()
			nr := startReader(b, ctx, w, id, "big")
			if err := nr.WaitApplied(ctx, "big", 1); err != nil {
				b.Fatal(err)
			}
			took := time.Since(start)
			if n := nr.Whitelist("big"); n != entries {
				b.Fatalf("%s holds %d entries, want %d", id, n, entries)
			}
			return took, sent()
		}
		_, recorded := newReader("new-0", true)
		snapSent, snapSnaps := firstSnapshot(recorded)
		var snap, snapFloor, snapBare []time.Duration
		var snapRatios, snapBareRatios []float64
		for round := 1; round <= rounds; round++ {
			took, _ := newReader(fmt.Sprintf("new-%d", round), false)
			floor, _ := w.floorTransfer(b, snapSent, birth("big", 0))
			bare, _ := w.floorTransfer(b, snapSent, nil)
			snap, snapFloor, snapBare = append(snap, took), append(snapFloor, floor), append(snapBare, bare)
			snapRatios, snapBareRatios = append(snapRatios, float64(took)/float64(floor)), append(snapBareRatios, float64(took)/float64(bare))
		}
		w.fleet.DropCache()
		cold, _ := newReader(fmt.Sprintf("new-%d", rounds+1), false)
		coldFloor, _ := w.floorTransfer(b, snapSent, birth("big", 0))
		cancel()
		b.ReportMetric(float64(median(offline))/1e6, "offline-ms")
		b.ReportMetric(float64(median(offFloor))/1e6, "offline-floor-ms")
		b.ReportMetric(median(offRatios), "offline-ratio")
		b.ReportMetric(float64(median(offBare))/1e6, "offline-bare-floor-ms")
		b.ReportMetric(float64(median(offCPU))/1e6, "offline-cpu-ms")
		b.ReportMetric(float64(median(offFloorCPU))/1e6, "offline-floor-cpu-ms")
		b.ReportMetric(median(offBareRatios), "offline-bare-ratio")
		b.ReportMetric(float64(size(offSent)), "offline-bytes")
		b.ReportMetric(float64(len(offSent)), "offline-msgs")
		b.ReportMetric(float64(len(snapSent)), "snapshot-msgs")
		b.ReportMetric(float64(offSnaps), "offline-snapshots-recorded")
		b.ReportMetric(float64(snapSnaps), "snapshot-snapshots-recorded")
		b.ReportMetric(float64(median(snap))/1e6, "snapshot-ms")
		b.ReportMetric(float64(median(snapFloor))/1e6, "snapshot-floor-ms")
		b.ReportMetric(median(snapRatios), "snapshot-ratio")
		b.ReportMetric(float64(median(snapBare))/1e6, "snapshot-bare-floor-ms")
		b.ReportMetric(median(snapBareRatios), "snapshot-bare-ratio")
		b.ReportMetric(float64(size(snapSent)), "snapshot-bytes")
		b.ReportMetric(float64(cold)/1e6, "cold-snapshot-ms")
		b.ReportMetric(float64(cold)/float64(coldFloor), "cold-snapshot-ratio")
	}
}

// birth is a reader's birth, as the floor's bare client publishes it.
func birth(zone string, applied uint64) []byte {
	b, err := proto.Encode(&proto.State{V: proto.Version, State: "online", Session: 1, Firmware: reader.DefaultFirmware,
		Clock: "ok", Applied: map[string]uint64{zone: applied}})
	if err != nil {
		panic(err)
	}
	return b
}

// median of a run's values (sorted in place).
func median[T cmp.Ordered](v []T) T {
	slices.Sort(v)
	return v[len(v)/2]
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
// connecting. With a birth, it is the whole pattern of a catch-up: the
// bare client publishes the birth and the sender, subscribed to it as the
// server is, sends the messages on receiving it; without, the messages
// alone are timed.
func (w *world) floorTransfer(b *testing.B, payloads [][]byte, birth []byte) (wall, cpu time.Duration) {
	msgs := int64(len(payloads))
	if msgs == 0 {
		return time.Nanosecond, 0
	}
	var got atomic.Int64
	done := make(chan struct{})
	// Two bare clients on topics of their own (the server would take a
	// device's birth for its own work, during the floor's time).
	tx := dialBench(b, w.url, "floor.tx", fleet.ServerUser, serverSecret)
	snapTopic, stateTopic := w.topics.Prefix()+"floor/snap", w.topics.Prefix()+"floor/state"
	send := func() {
		// As many in flight as the server allows a snapshot (16).
		var inflight []mqtt.Token
		for _, p := range payloads {
			if len(inflight) == 16 {
				inflight[0].Wait()
				inflight = inflight[1:]
			}
			inflight = append(inflight, tx.Publish(snapTopic, 1, false, p))
		}
	}
	if birth != nil {
		// A retained birth of an earlier round is not an answer's cue.
		var once sync.Once
		err := fleet.Subscribe(tx, stateTopic, func(_ mqtt.Client, m mqtt.Message) {
			if !m.Retained() {
				once.Do(send)
			}
		})
		if err != nil {
			b.Fatalf("floor: %v", err)
		}
	}
	runtime.GC() // as before onecard's rounds
	cpu0 := cpuNow()
	start := time.Now()
	rx := dialBench(b, w.url, "floor.rx", fleet.ServerUser, serverSecret, func(o *mqtt.ClientOptions) {
		o.SetOrderMatters(true).SetProtocolVersion(4) // as the reader's client
	})
	rx.Subscribe(snapTopic, 1, func(_ mqtt.Client, _ mqtt.Message) {
		if got.Add(1) == msgs {
			close(done)
		}
	}).Wait()
	if birth != nil {
		rx.Publish(stateTopic, 1, true, birth)
	} else {
		send()
	}
	<-done
	wall, cpu = time.Since(start), cpuNow()-cpu0
	tx.Disconnect(0)
	rx.Disconnect(0)
	return wall, cpu
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

// cpuNow is the CPU time the process has used, user and system.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
