package fleet_test

import (
	"context"
	"fmt"
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
//     applied the last one.
//   - snapshot: a new reader joins a zone of E entries (default 10,000;
//     full size ONECARD_BENCH_ENTRIES=100000); time until it has applied
//     the snapshot.
func BenchmarkCatchUp(b *testing.B) {
	changes := envInt("ONECARD_BENCH_CHANGES", 1000)
	entries := envInt("ONECARD_BENCH_ENTRIES", 10000)
	for b.Loop() {
		db := storetest.SQLite(b)
		w := newBenchWorld(b, db, []fleet.NewDevice{
			{Code: "late-1", Kind: "reader", Zones: []string{"gate"}},
			{Code: "new-1", Kind: "reader", Zones: []string{"big"}},
			{Code: "floor-1", Kind: "reader", Zones: []string{"floor"}},
		})
		ctx, cancel := context.WithCancel(context.Background())
		w.startService(b, ctx)

		// Offline across many changes.
		late := startReader(b, ctx, w, "late-1", "gate")
		w.waitOnline(b, late)
		late.Offline(true)
		for late.Online() {
			time.Sleep(time.Millisecond)
		}
		var last uint64
		for i := 0; i < changes; i++ {
			last = w.change(b, "gate", put(fmt.Sprintf("04%06X", i), uint64(i+1), false))
		}
		sent := w.countSent(b, "late-1")
		start := time.Now()
		late.Offline(false)
		for late.Applied()["gate"] != last {
			time.Sleep(time.Millisecond)
		}
		offline := time.Since(start)
		offBytes, offMsgs := sent()

		// A new reader and a big zone.
		preload(b, db, w, "big", entries)
		sent = w.countSent(b, "new-1")
		start = time.Now()
		nr := startReader(b, ctx, w, "new-1", "big")
		for nr.Whitelist("big") != entries {
			time.Sleep(time.Millisecond)
		}
		snap := time.Since(start)
		snapBytes, snapMsgs := sent()

		offFloor := w.floorTransfer(b, offMsgs, offBytes, true)
		snapFloor := w.floorTransfer(b, snapMsgs, snapBytes, false)
		cancel()
		b.ReportMetric(float64(offline.Milliseconds()), "offline-ms")
		b.ReportMetric(float64(offFloor.Milliseconds()), "offline-floor-ms")
		b.ReportMetric(float64(offline)/float64(offFloor), "offline-ratio")
		b.ReportMetric(float64(offBytes), "offline-bytes")
		b.ReportMetric(float64(offMsgs), "offline-msgs")
		b.ReportMetric(float64(snapMsgs), "snapshot-msgs")
		b.ReportMetric(float64(snap.Milliseconds()), "snapshot-ms")
		b.ReportMetric(float64(snapFloor.Milliseconds()), "snapshot-floor-ms")
		b.ReportMetric(float64(snap)/float64(snapFloor), "snapshot-ratio")
		b.ReportMetric(float64(snapBytes), "snapshot-bytes")
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

// countSent counts the whitelist bytes and messages sent to one device
// from now on (its wl and snap topics), as a monitor sees them.
func (w *world) countSent(b *testing.B, id string) func() (int64, int64) {
	var bytes, msgs atomic.Int64
	c := dialBench(b, w.url, "count."+id, fleet.ServerUser, serverSecret)
	for _, k := range []string{proto.KindWL, proto.KindSnap} {
		c.Subscribe(w.topics.Device(id, k), 1, func(_ mqtt.Client, m mqtt.Message) {
			bytes.Add(int64(len(m.Payload())))
			msgs.Add(1)
		}).Wait()
	}
	return func() (int64, int64) {
		defer c.Disconnect(0)
		return bytes.Load(), msgs.Load()
	}
}

// floorTransfer sends msgs messages totalling bytes through the broker to
// a bare client, as fast as QoS 1 allows with the server's window of
// unacknowledged publishes, and times their arrival. With reconnect, the
// time includes the bare client's connecting and subscribing, as a reader
// coming back online does.
func (w *world) floorTransfer(b *testing.B, msgs, bytes int64, reconnect bool) time.Duration {
	if msgs == 0 {
		return time.Nanosecond
	}
	size := int(bytes / msgs)
	var got atomic.Int64
	done := make(chan struct{})
	tx := dialBench(b, w.url, "floor.tx", fleet.ServerUser, serverSecret)
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'x'
	}
	start := time.Now()
	rx := dialBench(b, w.url, "floor-1", "floor-1", w.secrets["floor-1"])
	rx.Subscribe(w.topics.Device("floor-1", proto.KindSnap), 1, func(_ mqtt.Client, _ mqtt.Message) {
		if got.Add(1) == msgs {
			close(done)
		}
	}).Wait()
	if !reconnect {
		start = time.Now()
	}
	// As many in flight as the server allows a snapshot (16).
	var inflight []mqtt.Token
	for i := int64(0); i < msgs; i++ {
		if len(inflight) == 16 {
			inflight[0].Wait()
			inflight = inflight[1:]
		}
		inflight = append(inflight, tx.Publish(w.topics.Device("floor-1", proto.KindSnap), 1, false, payload))
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
