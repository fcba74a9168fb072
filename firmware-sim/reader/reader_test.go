package reader_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"onecard/firmware-sim/reader"
	"onecard/fleet/proto"
)

const (
	cardA = "04A23B1C"
	cardB = "04FF0012"
	cardC = "04000003"
	never = int64(4102444800) // 2100-01-01
)

// A reader births (retained) with session 1; its will is retained when the
// network drops; it births again with session 2.
func TestBirthWillAndSession(t *testing.T) {
	broker := startBroker(t)
	srv := newServer(t, broker)
	r, _ := start(t, reader.Options{Broker: broker, ID: "gate-1", Zone: "gate", Zones: []string{"b3-door"}})

	st := srv.state("gate-1", born(1))
	if st.Firmware != reader.DefaultFirmware || st.Clock != "ok" || !maps.Equal(st.Applied, map[string]uint64{"gate": 0, "b3-door": 0}) {
		t.Errorf("birth: %+v", st)
	}
	eventually(t, "online", r.Online)
	if m := retained(t, broker, topics.Device("gate-1", proto.KindState)); !m.retained || mustJSON(decodeState(t, m.payload)) != mustJSON(st) {
		t.Errorf("retained %q (retained %t), want the birth", m.payload, m.retained)
	}

	r.Offline(true)
	if r.Online() {
		t.Error("online after Offline(true)")
	}
	srv.state("gate-1", died(1)) // the will, published by the broker
	m := retained(t, broker, topics.Device("gate-1", proto.KindState))
	if st := decodeState(t, m.payload); !m.retained || st.State != "offline" || st.Session != 1 {
		t.Errorf("retained after the network dropped: %s (retained %t)", m.payload, m.retained)
	}
	srv.quiet(proto.KindState, "gate-1", 300*time.Millisecond) // no reconnection while offline

	r.Offline(false)
	srv.state("gate-1", born(2))
	if got := r.Status().Session; got != 2 {
		t.Errorf("session %d", got)
	}
}

func decodeState(t *testing.T, b []byte) proto.State {
	t.Helper()
	st, err := proto.Decode[proto.State](b)
	if err != nil {
		t.Fatalf("state %s: %v", b, err)
	}
	return st
}

// The change sequence rules: apply the next, re-acknowledge the old,
// request a sync on a gap.
func TestWhitelistChanges(t *testing.T) {
	r, srv := bornGate(t)
	zone := topics.Zone("gate")

	srv.send(zone, change("gate", 1, put(cardA, 0, never, "always")), false)
	srv.ack("gate-1", "gate", 1)
	if _, ok := r.Entry("gate", cardA); !ok || r.Applied()["gate"] != 1 {
		t.Fatalf("seq 1 not applied: %v", r.Applied())
	}

	srv.send(zone, change("gate", 1, put(cardB, 0, never, "always")), false) // a resend (altered, to see it is not applied)
	srv.ack("gate-1", "gate", 1)
	if _, ok := r.Entry("gate", cardB); ok {
		t.Error("a resent seq 1 was applied again")
	}

	srv.send(zone, change("gate", 3, put(cardC, 0, never, "always")), false)
	sync := expect[proto.Sync](srv, proto.KindSync, "gate-1", nil)
	if !maps.Equal(sync.Zones, map[string]uint64{"gate": 1}) {
		t.Errorf("sync %v, want gate:1", sync.Zones)
	}
	if _, ok := r.Entry("gate", cardC); ok || r.Applied()["gate"] != 1 {
		t.Errorf("seq 3 after 1 was applied: %v", r.Applied())
	}

	// The missed changes, resent to the device alone.
	srv.send(topics.Device("gate-1", proto.KindWL), change("gate", 2, put(cardB, 0, never, "always")), false)
	srv.send(topics.Device("gate-1", proto.KindWL), change("gate", 3, put(cardC, 0, never, "always"), del(cardA)), false)
	srv.ack("gate-1", "gate", 3) // 2 may be acknowledged on its own, or only with 3
	_, a := r.Entry("gate", cardA)
	_, b := r.Entry("gate", cardB)
	_, c := r.Entry("gate", cardC)
	if a || !b || !c || r.Applied()["gate"] != 3 {
		t.Errorf("after 2 and 3: A %t B %t C %t applied %v", a, b, c, r.Applied())
	}
}

// WaitApplied returns once the zone reaches the sequence, not before, and
// gives up with its context.
func TestWaitApplied(t *testing.T) {
	r, srv := bornGate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() { got <- r.WaitApplied(ctx, "gate", 2) }()

	srv.send(topics.Zone("gate"), change("gate", 1, put(cardA, 0, never, "always")), false)
	srv.ack("gate-1", "gate", 1)
	select {
	case err := <-got:
		t.Fatalf("returned at seq 1 (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	srv.send(topics.Zone("gate"), change("gate", 2, put(cardB, 0, never, "always")), false)
	if err := <-got; err != nil || r.Applied()["gate"] < 2 {
		t.Fatalf("WaitApplied: %v, applied %v", err, r.Applied())
	}
	if err := r.WaitApplied(ctx, "gate", 1); err != nil {
		t.Errorf("already applied: %v", err)
	}
	short, stop := context.WithTimeout(ctx, 20*time.Millisecond)
	defer stop()
	if err := r.WaitApplied(short, "gate", 99); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("seq never sent: %v", err)
	}
}

// Changes that come faster than ackEvery are acknowledged a few times, not
// once per handful; the last acknowledgement names the last change.
func TestAcksArePaced(t *testing.T) {
	r, srv := bornGate(t)
	const n = 300
	start := time.Now()
	var toks []mqtt.Token
	for seq := uint64(1); seq <= n; seq++ {
		b, err := proto.Encode(change("gate", seq, put(fmt.Sprintf("04%06X", seq), 0, never, "always")))
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, srv.c.Publish(topics.Zone("gate"), 1, false, b))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	acks := 0
	for {
		a := expect[proto.Ack](srv, proto.KindAck, "gate-1", nil)
		acks++
		if a.Seq == n {
			break
		}
	}
	if r.Applied()["gate"] != n {
		t.Fatalf("applied %v", r.Applied())
	}
	took := time.Since(start)
	t.Logf("%d changes, %d acknowledgements in %v", n, acks, took)
	if most := int(took/(5*time.Millisecond)) + 2; acks > most {
		t.Errorf("%d acknowledgements for %d changes in %v: at most %d, one per 5 ms", acks, n, took, most)
	}
}

// Chunks out of order, mixed with another snapshot's, make one whitelist.
func TestSnapshot(t *testing.T) {
	r, srv := bornGate(t)
	srv.send(topics.Zone("gate"), change("gate", 1, put(cardA, 0, never, "always")), false)
	srv.ack("gate-1", "gate", 1)

	snap := topics.Device("gate-1", proto.KindSnap)
	entry := func(i int) proto.Entry {
		return proto.Entry{Card: fmt.Sprintf("0510%04X", i), No: uint64(i + 1), From: 0, Until: never, Sched: "always"}
	}
	chunk := func(id string, n, of int, entries ...proto.Entry) *proto.Snapshot {
		return &proto.Snapshot{V: 1, Zone: "gate", Seq: 40, Snapshot: id, Chunk: n, Chunks: of, Entries: entries}
	}
	srv.send(snap, chunk("snap-1", 2, 3, entry(4), entry(5)), false)
	srv.send(snap, chunk("snap-1", 0, 3, entry(0), entry(1)), false)
	srv.send(snap, chunk("snap-2", 0, 3, entry(100)), false) // another snapshot, never finished
	srv.send(snap, chunk("snap-1", 0, 3, entry(0), entry(1)), false)
	srv.quiet(proto.KindAck, "gate-1", 100*time.Millisecond)
	if r.Applied()["gate"] != 1 {
		t.Fatal("applied before the last chunk")
	}
	srv.send(snap, chunk("snap-1", 1, 3, entry(2), entry(3)), false)
	srv.ack("gate-1", "gate", 40)

	if got := r.Applied()["gate"]; got != 40 {
		t.Errorf("applied %d, want 40", got)
	}
	if n := r.Whitelist("gate"); n != 6 {
		t.Errorf("%d entries, want 6", n)
	}
	for _, c := range []string{cardA, entry(100).Card} {
		if _, ok := r.Entry("gate", c); ok {
			t.Errorf("%s kept", c)
		}
	}
	// Changes follow on from the snapshot.
	srv.send(topics.Zone("gate"), change("gate", 41, del(entry(0).Card)), false)
	srv.ack("gate-1", "gate", 41)
	if n := r.Whitelist("gate"); n != 5 {
		t.Errorf("%d entries after seq 41, want 5", n)
	}
	// A snapshot older than the changes applied is not rolled back to.
	stale := chunk("snap-3", 0, 1, entry(200))
	stale.Seq = 30
	srv.send(snap, stale, false)
	srv.ack("gate-1", "gate", 41)
	if _, ok := r.Entry("gate", entry(200).Card); ok || r.Applied()["gate"] != 41 {
		t.Errorf("stale snapshot applied: %v", r.Applied())
	}
}

// With SaveEvery, the state is written periodically and when Run returns.
func TestPeriodicSave(t *testing.T) {
	broker := startBroker(t)
	srv := newServer(t, broker)
	file := filepath.Join(t.TempDir(), "gate-1.json")
	o := reader.Options{Broker: broker, Site: site, ID: "gate-1", Zone: "gate", StateFile: file, SaveEvery: time.Hour}
	r, stop := start(t, o)
	srv.state("gate-1", born(1))
	srv.send(topics.Zone("gate"), change("gate", 1, put(cardA, 0, never, "always")), false)
	srv.ack("gate-1", "gate", 1)
	r.Tap(cardA)
	stop()
	r2, err := reader.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if st := r2.Status(); st.Session != 1 || st.EventSeq != 1 || st.Applied["gate"] != 1 {
		t.Errorf("after a periodic save: %+v", st)
	}
}

// The decision at its edges (docs/mqtt.md "The decision").
func TestDecision(t *testing.T) {
	broker := startBroker(t)
	srv := newServer(t, broker)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	sunday := time.Date(2026, 11, 1, 7, 59, 0, 0, shanghai)
	if sunday.Weekday() != time.Sunday {
		t.Fatalf("%v is a %v", sunday, sunday.Weekday())
	}
	monday := time.Date(2026, 11, 2, 8, 0, 0, 0, shanghai)
	from, until := monday.Add(-48*time.Hour).Unix(), monday.Add(48*time.Hour).Unix()
	clk := &clock{t: monday}
	r, _ := start(t, reader.Options{Broker: broker, ID: "gate-1", Zone: "gate", Zones: []string{"b3-door"}, Clock: clk.Now})
	srv.state("gate-1", born(1))

	srv.send(topics.Config(), &proto.Config{V: 1, TZ: "Asia/Shanghai", Holidays: []string{"2026-11-03"},
		Schedules: map[string][]proto.Segment{"workday": {{Days: "12345", From: "08:00", To: "18:00"}, {Days: "H", From: "10:00", To: "12:00"}}}}, true)
	blocked := put("04000002", 0, never, "always")
	blocked.Blocked = true
	blockedExpired := put("04000007", 0, 1, "always")
	blockedExpired.Blocked = true
	srv.send(topics.Zone("gate"), change("gate", 1,
		put("04000001", from, until, "always"),
		blocked,
		put("04000003", 0, never, "workday"),
		put("04000005", 0, never, "nightshift"), // not in the configuration
		blockedExpired,
		put("04000008", 0, until, "workday"),
	), false)
	srv.send(topics.Zone("b3-door"), change("b3-door", 1, put("04000004", 0, never, "always"), put("04000006", 0, 1, "always")), false)
	srv.acks("gate-1", map[string]uint64{"gate": 1, "b3-door": 1})

	sec := func(u int64) time.Time { return time.Unix(u, 0) }
	for _, tc := range []struct {
		name   string
		card   string
		at     time.Time
		reason string // "" = granted
	}{
		{"unknown", "04999999", monday, "unknown"},
		{"blocked", "04000002", monday, "blocked"},
		{"blocked before expired", "04000007", monday, "blocked"},
		{"from-1s", "04000001", sec(from - 1), "not_yet_valid"},
		{"at from", "04000001", sec(from), ""},
		{"until-1s", "04000001", sec(until - 1), ""},
		{"until-1ms", "04000001", sec(until).Add(-time.Millisecond), ""},
		{"at until", "04000001", sec(until), "expired"},
		{"Sunday 07:59", "04000003", sunday, "schedule"},
		{"Sunday 10:00", "04000003", sunday.Add(2*time.Hour + time.Minute), "schedule"},
		{"Monday 07:59:59", "04000003", monday.Add(-time.Second), "schedule"},
		{"Monday 08:00", "04000003", monday, ""},
		{"Monday 17:59:59", "04000003", monday.Add(10*time.Hour - time.Second), ""},
		{"Monday 18:00", "04000003", monday.Add(10 * time.Hour), "schedule"},
		{"holiday Tuesday 08:30", "04000003", monday.Add(24*time.Hour + 30*time.Minute), "schedule"},
		{"holiday Tuesday 10:30", "04000003", monday.Add(26*time.Hour + 30*time.Minute), ""},
		{"expired before schedule", "04000008", sec(until).Add(time.Hour), "expired"},
		{"schedule not configured", "04000005", monday, "schedule"},
		{"other zone", "04000004", monday, "zone"},
		{"other zone, expired", "04000006", monday, "expired"},
		{"lower-case, with colons", "04:00:00:03", monday, ""},
	} {
		clk.Set(tc.at)
		d := r.Tap(tc.card)
		if d.Granted != (tc.reason == "") || d.Reason != tc.reason {
			t.Errorf("%s: %+v, want reason %q", tc.name, d, tc.reason)
		}
	}
	if got := r.RelayOpens(); got != 7 {
		t.Errorf("relay opened %d times, want 7", got)
	}
}

// Events are numbered, published in order, kept until acknowledged, and
// replayed after the network comes back.
func TestEvents(t *testing.T) {
	r, srv := bornGate(t)
	srv.send(topics.Zone("gate"), change("gate", 1, put(cardA, 0, never, "always")), false)
	srv.ack("gate-1", "gate", 1)

	r.Tap(cardA)
	r.Tap(cardB)
	var got []proto.Event
	for len(got) < 2 {
		got = append(got, expect[proto.Events](srv, proto.KindEvt, "gate-1", nil).Events...)
	}
	if got[0].Seq != 1 || got[0].Kind != "granted" || got[0].Card != cardA || got[0].Zone != "gate" || got[0].Clock != "ok" ||
		got[1].Seq != 2 || got[1].Kind != "denied" || got[1].Reason != "unknown" {
		t.Errorf("events %s", mustJSON(got))
	}
	if r.Pending() != 2 {
		t.Errorf("pending %d before evtack", r.Pending())
	}
	srv.send(topics.Device("gate-1", proto.KindEvtAck), &proto.EventAck{V: 1, Seq: 1}, false)
	eventually(t, "evtack 1 drops event 1", func() bool { return r.Pending() == 1 })

	// Offline: taps decide and queue.
	r.Offline(true)
	srv.state("gate-1", died(1))
	for i := range 250 {
		if d := r.Tap(cardA); !d.Granted {
			t.Fatalf("tap %d offline: %+v", i, d)
		}
	}
	if r.Pending() != 251 {
		t.Errorf("pending %d offline, want 251", r.Pending())
	}
	r.Offline(false)
	srv.state("gate-1", born(2))
	// Replayed: event 2 (not acknowledged) and the 250 new ones, in order,
	// at most 100 a message.
	next := uint64(2)
	for next <= 252 {
		evs := expect[proto.Events](srv, proto.KindEvt, "gate-1", nil).Events
		if len(evs) > 100 {
			t.Errorf("%d events in one message", len(evs))
		}
		for _, e := range evs {
			if e.Seq != next {
				t.Fatalf("event %d, want %d", e.Seq, next)
			}
			next++
		}
	}
	srv.send(topics.Device("gate-1", proto.KindEvtAck), &proto.EventAck{V: 1, Seq: 252}, false)
	eventually(t, "all acknowledged", func() bool { return r.Pending() == 0 })
	if st := r.Status(); st.EventSeq != 252 {
		t.Errorf("event seq %d", st.EventSeq)
	}
	srv.quiet(proto.KindEvt, "gate-1", 100*time.Millisecond)
}

// A restart from the state file keeps the whitelist, the applied
// sequences, the events and their numbering, and the session.
func TestRestartFromStateFile(t *testing.T) {
	broker := startBroker(t)
	srv := newServer(t, broker)
	file := filepath.Join(t.TempDir(), "gate-1.json")
	o := reader.Options{Broker: broker, Site: site, ID: "gate-1", Zone: "gate", StateFile: file}
	r, stop := start(t, o)
	srv.state("gate-1", born(1))
	srv.send(topics.Config(), &proto.Config{V: 1, TZ: "Asia/Shanghai", Schedules: map[string][]proto.Segment{"all": {{Days: "1234567", From: "00:00", To: "24:00"}}}}, true)
	srv.send(topics.Zone("gate"), change("gate", 1, put(cardA, 0, never, "all")), false)
	srv.ack("gate-1", "gate", 1)
	r.Tap(cardA)
	r.Tap(cardB)
	expect[proto.Events](srv, proto.KindEvt, "gate-1", func(e proto.Events) bool { return e.Events[len(e.Events)-1].Seq == 2 })
	srv.send(topics.Device("gate-1", proto.KindEvtAck), &proto.EventAck{V: 1, Seq: 1}, false)
	eventually(t, "evtack", func() bool { return r.Pending() == 1 })
	stop()
	srv.state("gate-1", died(1)) // published by the reader itself at a clean stop
	if m := retained(t, broker, topics.Device("gate-1", proto.KindState)); decodeState(t, m.payload).State != "offline" {
		t.Errorf("retained after a clean stop: %s", m.payload)
	}

	r2, err := reader.New(o)
	if err != nil {
		t.Fatal(err)
	}
	st := r2.Status()
	if st.Session != 1 || st.EventSeq != 2 || st.Pending != 1 || st.Applied["gate"] != 1 {
		t.Errorf("reloaded %+v", st)
	}
	if _, ok := r2.Entry("gate", cardA); !ok {
		t.Error("whitelist lost")
	}
	if d := r2.Tap(cardA); !d.Granted { // the configuration came back too
		t.Errorf("tap after reload: %+v", d)
	}
	if st := r2.Status(); st.EventSeq != 3 {
		t.Errorf("event seq %d after a tap, want 3", st.EventSeq)
	}

	// Running again: session 2, events 2 and 3 replayed.
	_, _ = start(t, reader.Options{Broker: broker, ID: "gate-1", Zone: "gate", StateFile: file})
	st2 := srv.state("gate-1", born(2))
	if st2.Applied["gate"] != 1 {
		t.Errorf("birth after restart: %+v", st2)
	}
	evs := expect[proto.Events](srv, proto.KindEvt, "gate-1", func(e proto.Events) bool { return e.Events[0].Seq == 2 })
	if len(evs.Events) != 2 || evs.Events[1].Seq != 3 {
		t.Errorf("replay %s", mustJSON(evs))
	}
	if _, err := os.Stat(file + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
}

// A power loss: the will (same session) is published by the broker, the
// reader comes back with the next session and its clock unset, and says so
// in its events until the clock is set.
func TestPowerLoss(t *testing.T) {
	broker := startBroker(t)
	srv := newServer(t, broker)
	r, _ := start(t, reader.Options{Broker: broker, ID: "gate-1", Zone: "gate", StateFile: filepath.Join(t.TempDir(), "s.json")})
	srv.state("gate-1", born(1))
	srv.send(topics.Zone("gate"), change("gate", 1, put(cardA, 0, never, "always")), false)
	srv.ack("gate-1", "gate", 1)

	r.PowerLoss()
	var st proto.State
	srv.states("gate-1", died(1), func(s proto.State) bool {
		st = s
		return born(2)(s)
	})
	if st.Clock != "unset" || st.Applied["gate"] != 1 {
		t.Errorf("birth after power loss: %+v", st)
	}
	if d := r.Tap(cardA); !d.Granted { // it still decides, with its guess of the time
		t.Errorf("tap with the clock unset: %+v", d)
	}
	e := expect[proto.Events](srv, proto.KindEvt, "gate-1", nil).Events[0]
	if e.Clock != "unset" || e.Seq != 1 || e.Kind != "granted" {
		t.Errorf("event with the clock unset: %+v", e)
	}
	if guess := time.UnixMilli(e.At); time.Since(guess) < 0 || time.Since(guess) > time.Minute {
		t.Errorf("guessed time %v", guess)
	}

	r.SetClock(true)
	if st := srv.state("gate-1", born(2)); st.Clock != "ok" {
		t.Errorf("birth after SetClock: %+v", st)
	}
	r.Tap(cardA)
	if e := expect[proto.Events](srv, proto.KindEvt, "gate-1", nil).Events; e[len(e)-1].Clock != "ok" || e[len(e)-1].Seq != 2 {
		t.Errorf("event after SetClock: %+v", e)
	}
}

// Commands: open pulses the relay once per id and not after it expires;
// resync asks for every zone from 0; reboot reconnects.
func TestCommands(t *testing.T) {
	broker := startBroker(t)
	srv := newServer(t, broker)
	r, _ := start(t, reader.Options{Broker: broker, ID: "gate-1", Zone: "gate", Zones: []string{"b3-door"}})
	srv.state("gate-1", born(1))
	cmd := topics.Device("gate-1", proto.KindCmd)
	later := time.Now().Add(time.Minute).UnixMilli()
	n := 0
	// barrier sends a resync and waits for its sync: everything sent
	// before has been handled.
	barrier := func() {
		t.Helper()
		n++
		srv.send(cmd, &proto.Command{V: 1, ID: fmt.Sprintf("barrier-%d", n), Cmd: "resync", Expires: later}, false)
		s := expect[proto.Sync](srv, proto.KindSync, "gate-1", nil)
		if !maps.Equal(s.Zones, map[string]uint64{"gate": 0, "b3-door": 0}) {
			t.Fatalf("resync: %v", s.Zones)
		}
	}

	srv.send(cmd, &proto.Command{V: 1, ID: "c1", Cmd: "open", Expires: later}, false)
	eventually(t, "relay opens", func() bool { return r.RelayOpens() == 1 })
	srv.send(cmd, &proto.Command{V: 1, ID: "c1", Cmd: "open", Expires: later}, false)
	srv.send(cmd, &proto.Command{V: 1, ID: "c2", Cmd: "open", Expires: time.Now().Add(-time.Second).UnixMilli()}, false)
	barrier()
	if got := r.RelayOpens(); got != 1 {
		t.Errorf("relay opened %d times, want 1 (a repeated id, an expired command)", got)
	}

	r.SetClock(false)
	srv.state("gate-1", func(s proto.State) bool { return s.Clock == "unset" })
	srv.send(cmd, &proto.Command{V: 1, ID: "c3", Cmd: "open", Expires: later}, false)
	barrier()
	if got := r.RelayOpens(); got != 1 {
		t.Errorf("open ran with the clock unset")
	}
	r.SetClock(true)

	srv.send(cmd, &proto.Command{V: 1, ID: "c4", Cmd: "reboot", Expires: later}, false)
	srv.states("gate-1", died(1), born(2))                                              // a reboot on purpose: the reader says it goes
	srv.send(cmd, &proto.Command{V: 1, ID: "c4", Cmd: "reboot", Expires: later}, false) // redelivered: not again
	barrier()
	srv.quiet(proto.KindState, "gate-1", 200*time.Millisecond)
}

// Payloads that fail to decode are counted and ignored.
func TestMalformedPayloads(t *testing.T) {
	r, srv := bornGate(t)
	srv.send(topics.Device("gate-1", proto.KindCmd), "not json", false)
	srv.send(topics.Device("gate-1", proto.KindCmd), `{"v":2,"id":"x","cmd":"open","expires":99999999999999}`, false)
	srv.send(topics.Zone("gate"), `{"v":1,"zone":"gate","seq":1,"ops":[{"op":"put","card":"nothex"}]}`, false)
	srv.send(topics.Zone("gate"), change("b3-door", 1, put(cardA, 0, never, "always")), false) // on another zone's topic
	srv.send(topics.Device("gate-1", proto.KindEvtAck), `{"v":1,"seq":-1}`, false)
	srv.send(topics.Zone("gate"), change("gate", 1, put(cardA, 0, never, "always")), false)
	srv.ack("gate-1", "gate", 1)
	if got := r.Malformed(); got != 5 {
		t.Errorf("malformed %d, want 5", got)
	}
	if r.RelayOpens() != 0 || r.Applied()["gate"] != 1 {
		t.Errorf("a malformed payload acted: relay %d applied %v", r.RelayOpens(), r.Applied())
	}
}

// Many readers in one process.
func TestFleet(t *testing.T) {
	broker := startBroker(t)
	srv := newServer(t, broker)
	f, err := reader.StartFleet(context.Background(), reader.Options{Broker: broker, Site: site, Zone: "gate", StateFile: t.TempDir()}, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	for i := 1; i <= 5; i++ {
		srv.state(fmt.Sprintf("reader-%d", i), born(1))
	}
	eventually(t, "all online", func() bool { return f.Online() == 5 })
	srv.send(topics.Zone("gate"), change("gate", 1, put(cardA, 0, never, "always")), false)
	for _, r := range f.Readers() {
		srv.ack(r.ID(), "gate", 1)
	}
	if d := f.Reader("reader-3").Tap(cardA); !d.Granted {
		t.Errorf("tap: %+v", d)
	}
	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		srv.state(fmt.Sprintf("reader-%d", i), died(1))
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []reader.Options{
		{Site: site, ID: "Gate 1", Zone: "gate"},
		{Site: site, ID: "gate-1"},
		{ID: "gate-1", Zone: "gate"},
		{Site: site, ID: "gate-1", Zone: "gate", Zones: []string{"b/3"}},
	} {
		if _, err := reader.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	file := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(file, []byte("{"), 0o600)
	if _, err := reader.New(reader.Options{Site: site, ID: "gate-1", Zone: "gate", StateFile: file}); err == nil {
		t.Error("a corrupt state file was accepted")
	}
}

func TestRunRejectsBadBroker(t *testing.T) {
	for _, b := range []string{"", "127.0.0.1:1883", "::"} {
		r, err := reader.New(reader.Options{Broker: b, Site: site, ID: "gate-1", Zone: "gate"})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Run(context.Background()); err == nil {
			t.Errorf("Run with broker %q: no error", b)
		}
	}
}

// A reader keeps trying until the broker is there, and comes back by
// itself when the broker drops it.
func TestReconnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there yet
	r, stop := start(t, reader.Options{Broker: "tcp://" + addr, ID: "gate-1", Zone: "gate"})
	defer stop()                       // before the broker, started later, is closed
	time.Sleep(400 * time.Millisecond) // a few attempts, backing off
	if r.Online() {
		t.Fatal("online without a broker")
	}
	s, broker := startBrokerAt(t, addr)
	srv := newServer(t, broker)
	st := srv.state("gate-1", func(st proto.State) bool { return st.State == "online" })
	if st.Session < 2 {
		t.Errorf("session %d: the failed attempts should have taken numbers", st.Session)
	}
	eventually(t, "online", r.Online)

	cl, ok := s.Clients.Get("gate-1")
	if !ok {
		t.Fatal("reader not known to the broker")
	}
	// (mochi publishes the will of a client it drops only if the drop
	// interrupts a read, so the will is not awaited here.)
	s.DisconnectClient(cl, packets.ErrServerShuttingDown)
	srv.state("gate-1", born(st.Session+1))
	eventually(t, "online again", r.Online)
}

// Events published while the server is not listening are dropped by the
// broker (clean sessions queue nothing); the reader sends them again when
// they stay unacknowledged, without waiting for a reconnect, and stops
// once they are acknowledged.
func TestEventsResentWhileUnacknowledged(t *testing.T) {
	saved := reader.EventResend
	reader.EventResend = 200 * time.Millisecond
	t.Cleanup(func() { reader.EventResend = saved })
	broker := startBroker(t)
	watcher := newServer(t, broker) // sees the birth, then goes away
	r, _ := start(t, reader.Options{Broker: broker, ID: "gate-1", Zone: "gate"})
	watcher.state("gate-1", born(1))
	watcher.c.Disconnect(0)
	r.Tap(cardA) // nobody subscribed: dropped by the broker
	time.Sleep(50 * time.Millisecond)
	srv := newServer(t, broker) // the server is back
	got := expect[proto.Events](srv, proto.KindEvt, "gate-1", nil)
	if len(got.Events) != 1 || got.Events[0].Seq != 1 || got.Events[0].Card != cardA {
		t.Fatalf("resent events %s", mustJSON(got))
	}
	srv.send(topics.Device("gate-1", proto.KindEvtAck), &proto.EventAck{V: 1, Seq: 1}, false)
	eventually(t, "evtack 1 drops event 1", func() bool { return r.Pending() == 0 })
	srv.quiet(proto.KindEvt, "gate-1", 3*reader.EventResend)
}
