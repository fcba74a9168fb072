package fleet_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"onecard/devices/broker"
	"onecard/estate"
	"onecard/firmware-sim/reader"
	"onecard/fleet"
	"onecard/fleet/proto"
	"onecard/store"
	"onecard/store/storetest"
)

var quiet = func() *slog.Logger {
	if v := os.Getenv("FLEET_TEST_LOG"); v != "" {
		var lvl slog.Level
		lvl.UnmarshalText([]byte(v)) // "warn", "info", …; anything else: info
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}()

// eachBroker runs fn against the embedded broker (with onecard's own
// authentication and ACL) and against Mosquitto (ONECARD_TEST_MQTT; under
// CI a missing Mosquitto fails the test).
func eachBroker(t *testing.T, fn func(t *testing.T, embedded bool)) {
	t.Run("embedded", func(t *testing.T) { fn(t, true) })
	t.Run("mosquitto", func(t *testing.T) {
		if os.Getenv("ONECARD_TEST_MQTT") == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("ONECARD_TEST_MQTT is not set: under CI the Mosquitto tests must run")
			}
			t.Skip("ONECARD_TEST_MQTT is not set; skipping the Mosquitto run")
		}
		fn(t, false)
	})
}

type world struct {
	db      *store.DB
	fleet   *fleet.Service
	url     string
	secrets map[string]string
	site    string
	topics  proto.Topics
}

const serverSecret = "server-secret-for-tests"

// newWorld makes a site with a fleet, its devices, a broker and the
// service running against it.
func newWorld(t *testing.T, db *store.DB, embedded bool, devs []fleet.NewDevice) *world {
	t.Helper()
	w := setupWorld(t, db, embedded, devs)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w.startService(t, ctx)
	return w
}

// newBenchWorld is newWorld without the service running yet: on the
// embedded broker, or on the Mosquitto at ONECARD_TEST_MQTT when
// ONECARD_BENCH_BROKER=mosquitto.
func newBenchWorld(t testing.TB, db *store.DB, devs []fleet.NewDevice) *world {
	return setupWorld(t, db, os.Getenv("ONECARD_BENCH_BROKER") != "mosquitto", devs)
}

// startService connects the fleet service to the broker and runs it.
func (w *world) startService(t testing.TB, ctx context.Context) {
	t.Helper()
	bus, err := fleet.DialPaho(ctx, w.url, "onecard.server."+w.site, fleet.ServerUser, serverSecret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	go w.fleet.Run(ctx, bus)
}

func setupWorld(t testing.TB, db *store.DB, embedded bool, devs []fleet.NewDevice) *world {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 4)
	rand.Read(b)
	site := "t" + hex.EncodeToString(b) // a site of its own on a shared Mosquitto
	es, err := estate.Open(ctx, db, site, "测试", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	fl, err := fleet.New(db, es.Site().ID, site, fleet.Options{ServerSecret: serverSecret, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{db: db, fleet: fl, secrets: map[string]string{}, site: site, topics: proto.Topics{Site: site}}
	for _, d := range devs {
		_, secret, err := fl.AddDevice(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		w.secrets[d.Code] = secret
	}
	if embedded {
		br, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Site: site, Auth: fl, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if err := br.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { br.Close() })
		fl.OnDisable(br.Disconnect)
		w.url = "tcp://" + br.Addr()
	} else {
		w.url = os.Getenv("ONECARD_TEST_MQTT")
	}
	return w
}

func (w *world) reader(t *testing.T, id, zone string) *reader.Reader {
	t.Helper()
	r, err := reader.New(reader.Options{Broker: w.url, Site: w.site, ID: id, Secret: w.secrets[id], Zone: zone,
		StateFile: t.TempDir() + "/state.json", Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func (w *world) change(t testing.TB, zone string, ops ...proto.Op) uint64 {
	t.Helper()
	var seq uint64
	err := w.db.Tx(context.Background(), func(tx *store.Tx) error {
		var err error
		seq, err = w.fleet.Change(context.Background(), tx, zone, ops)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	w.fleet.Kick()
	return seq
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitApplied waits until r has applied zone up to seq.
func waitApplied(t *testing.T, r *reader.Reader, zone string, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.WaitApplied(ctx, zone, seq); err != nil {
		t.Fatalf("%s never applied %s up to %d (it has %v): %v", r.ID(), zone, seq, r.Applied(), err)
	}
}

func put(card string, no uint64, blocked bool) proto.Op {
	now := time.Now().Unix()
	return proto.Op{Op: "put", Entry: proto.Entry{Card: card, No: no, From: now - 3600, Until: now + 86400, Sched: "always", Blocked: blocked}}
}

func (w *world) events(t *testing.T) (n int) {
	t.Helper()
	if err := w.db.Get(context.Background(), &n, "SELECT COUNT(*) FROM access_events"); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWhitelistReachesReadersAndEventsComeBackOnce is the fleet end to
// end: changes made before and while readers are connected reach them, a
// reader offline across changes catches up, taps are decided on the reader
// from what it holds, and every event is stored exactly once.
func TestWhitelistReachesReadersAndEventsComeBackOnce(t *testing.T) {
	eachBroker(t, func(t *testing.T, embedded bool) {
		storetest.Each(t, func(t *testing.T, db *store.DB) {
			w := newWorld(t, db, embedded, []fleet.NewDevice{
				{Code: "gate-1", Kind: "turnstile", Zones: []string{"gate"}},
				{Code: "gate-2", Kind: "turnstile", Zones: []string{"gate"}},
				{Code: "b3-door", Kind: "reader", Zones: []string{"b3"}},
			})
			// A change before any reader exists: new readers get it by snapshot.
			w.change(t, "gate", put("04A23B1C", 1000001, false))
			g1, g2, b3 := w.reader(t, "gate-1", "gate"), w.reader(t, "gate-2", "gate"), w.reader(t, "b3-door", "b3")
			eventually(t, "the first change at both gates", func() bool {
				return g1.Applied()["gate"] == 1 && g2.Applied()["gate"] == 1
			})
			if d := g1.Tap("04A23B1C"); !d.Granted {
				t.Fatalf("tap at gate-1: %+v", d)
			}
			if d := b3.Tap("04A23B1C"); d.Granted || d.Reason != "unknown" {
				t.Fatalf("tap at another zone's door: %+v", d)
			}
			// A change while connected: broadcast once to the zone.
			w.change(t, "gate", put("04A23B1C", 1000001, true))
			eventually(t, "the block at both gates", func() bool {
				return g1.Applied()["gate"] == 2 && g2.Applied()["gate"] == 2
			})
			if d := g1.Tap("04A23B1C"); d.Granted || d.Reason != "blocked" {
				t.Fatalf("blocked card at gate-1: %+v", d)
			}
			// gate-2 is offline across two changes, then catches up.
			g2.Offline(true)
			eventually(t, "gate-2 offline", func() bool { return !g2.Online() })
			w.change(t, "gate", put("04A23B1C", 1000001, false))
			last := w.change(t, "gate", put("04000001", 1000002, false))
			if d := g2.Tap("04000001"); d.Granted {
				t.Fatalf("gate-2 granted a card it cannot know yet")
			}
			g2.Offline(false)
			waitApplied(t, g2, "gate", 4)
			if d := g2.Tap("04000001"); !d.Granted {
				t.Fatalf("after catching up: %+v", d)
			}
			eventually(t, "every event stored and acknowledged", func() bool {
				return g1.Pending() == 0 && g2.Pending() == 0 && b3.Pending() == 0 && w.events(t) == 5
			})
			// Acknowledgements are sent a few milliseconds after the
			// change (docs/mqtt.md): the zone's are all in before the lag
			// is read.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := w.fleet.WaitAcknowledged(ctx, "gate", last); err != nil {
				t.Fatalf("gate never acknowledged %d: %v", last, err)
			}
			devs, err := w.fleet.Devices(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range devs {
				if !d.Online || d.Lag() != 0 {
					t.Errorf("%s: online %v lag %d", d.Code, d.Online, d.Lag())
				}
			}
			var denied int
			db.Get(context.Background(), &denied, "SELECT COUNT(*) FROM access_events WHERE kind = 'denied' AND reason = 'blocked'")
			if denied != 1 {
				t.Errorf("%d blocked denials stored, want 1", denied)
			}
		})
	})
}

func TestCommandsReachTheDevice(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t), true, []fleet.NewDevice{{Code: "gate-1", Kind: "turnstile", Zones: []string{"gate"}}})
	g1 := w.reader(t, "gate-1", "gate")
	eventually(t, "gate-1 online", g1.Online)
	ctx := context.Background()
	if _, err := w.fleet.SendCommand(ctx, "gate-1", "open"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the door relay", func() bool { return g1.RelayOpens() == 1 })
	if _, err := w.fleet.SendCommand(ctx, "gate-1", "unlock-all"); err == nil {
		t.Fatal("an unknown command was sent")
	}
	if _, err := w.fleet.SendCommand(ctx, "gate-9", "open"); err == nil {
		t.Fatal("a command to an unknown device was sent")
	}
	if err := w.fleet.SetDisabled(ctx, "gate-1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := w.fleet.SendCommand(ctx, "gate-1", "open"); err == nil {
		t.Fatal("a command to a disabled device was sent")
	}
	var n int
	w.db.Get(ctx, &n, "SELECT COUNT(*) FROM audit_log WHERE action = 'device.command'")
	if n != 1 {
		t.Fatalf("%d command audit rows, want 1", n)
	}
}

// TestResyncShowsProgress: a supervisor's resync sends a snapshot of a
// 1,200-card zone in three chunks and is done when the reader acknowledges.
func TestResyncShowsProgress(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t), true, []fleet.NewDevice{{Code: "gate-1", Kind: "turnstile", Zones: []string{"gate"}}})
	var ops []proto.Op
	for i := 0; i < 1200; i++ {
		ops = append(ops, put(fmt.Sprintf("04%06X", i), uint64(i+1), false))
		if len(ops) == 300 {
			w.change(t, "gate", ops...)
			ops = nil
		}
	}
	g1 := w.reader(t, "gate-1", "gate")
	waitApplied(t, g1, "gate", 4)
	if err := w.fleet.StartResync(context.Background(), "gate-1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the resync acknowledged", func() bool {
		r, ok := w.fleet.ResyncProgress("gate-1")
		return ok && r.Done()
	})
	r, _ := w.fleet.ResyncProgress("gate-1")
	if z := r.Zones[0]; z.Entries != 1200 || z.Sent != 1200 || z.Seq != 4 || z.Percent() != 100 {
		t.Fatalf("progress %+v", z)
	}
	if g1.Whitelist("gate") != 1200 {
		t.Fatalf("whitelist after resync: %d", g1.Whitelist("gate"))
	}
	if err := w.fleet.StartResync(context.Background(), "nope"); err == nil {
		t.Fatal("resync of an unknown device started")
	}
}

// TestSnapshotOnBothDatabases sends a zone of more than one page of
// entries (each page is joined by the database) as a snapshot, on SQLite
// and PostgreSQL, including an entry stored by an earlier version as JSON,
// which the service rewrites in row form when it starts.
func TestSnapshotOnBothDatabases(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		w := setupWorld(t, db, true, []fleet.NewDevice{{Code: "gate-1", Kind: "reader", Zones: []string{"gate"}}})
		const n = 5300
		var ops []proto.Op
		for i := 0; i < n; i++ {
			ops = append(ops, put(fmt.Sprintf("04%06X", i), uint64(i+1), i%7 == 0))
			if len(ops) == 500 || i == n-1 {
				w.change(t, "gate", ops...)
				ops = nil
			}
		}
		ctx := context.Background()
		var zid int64
		if err := db.Get(ctx, &zid, "SELECT id FROM zones WHERE code = ?", "gate"); err != nil {
			t.Fatal(err)
		}
		legacy := `{"card":"05AABBCC","no":77,"from":10,"until":4102444800,"sched":"always","blocked":true}`
		if _, err := db.Exec(ctx, "INSERT INTO wl_entries (zone_id, card, entry, seq) VALUES (?, ?, ?, 1)", zid, "05AABBCC", legacy); err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		w.startService(t, sctx)
		eventually(t, "the legacy entry rewritten", func() bool {
			var row string
			db.Get(ctx, &row, "SELECT entry FROM wl_entries WHERE card = ?", "05AABBCC")
			return row == "05AABBCC,77,10,4102444800,always,1"
		})
		g1 := w.reader(t, "gate-1", "gate")
		waitApplied(t, g1, "gate", 11)
		if err := w.fleet.StartResync(ctx, "gate-1"); err != nil { // a snapshot
			t.Fatal(err)
		}
		eventually(t, "the snapshot applied", func() bool { return g1.Whitelist("gate") == n+1 })
		if e, ok := g1.Entry("gate", "05AABBCC"); !ok || e.No != 77 || !e.Blocked {
			t.Fatalf("legacy entry on the reader: %+v %v", e, ok)
		}
		if e, ok := g1.Entry("gate", fmt.Sprintf("04%06X", 5299)); !ok || e.No != 5300 || !e.Blocked { // 5299 = 7 × 757
			t.Fatalf("last entry on the reader: %+v %v", e, ok)
		}
		if d := g1.Tap("040014B2"); !d.Granted { // 5298
			t.Fatalf("tap of 5298: %+v", d)
		}
		if d := g1.Tap("040014B3"); d.Granted || d.Reason != "blocked" {
			t.Fatalf("tap of 5299: %+v", d)
		}
	})
}
