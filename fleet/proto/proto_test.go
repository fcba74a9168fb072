package proto_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"onecard/fleet/proto"
)

var topics = proto.Topics{Site: "cuihu"}

func TestACL(t *testing.T) {
	dev := proto.Principal{Role: proto.RoleDevice, ID: "gate-1", Zones: []string{"gate", "carpark"}}
	mon := proto.Principal{Role: proto.RoleMonitor, ID: "monitor"}
	srv := proto.Principal{Role: proto.RoleServer, ID: "onecard"}
	p := topics.Prefix()
	cases := []struct {
		who   proto.Principal
		topic string
		write bool
		want  bool
	}{
		{dev, p + "dev/gate-1/state", true, true},
		{dev, p + "dev/gate-1/evt", true, true},
		{dev, p + "dev/gate-1/ack", true, true},
		{dev, p + "dev/gate-1/sync", true, true},
		{dev, p + "dev/gate-1/cmd", true, false},    // cannot command itself
		{dev, p + "dev/gate-1/evtack", true, false}, // cannot forge the server's acks
		{dev, p + "dev/gate-2/evt", true, false},    // another device's topic
		{dev, p + "dev/gate-2/state", true, false},
		{dev, p + "zone/gate/wl", true, false}, // cannot broadcast changes
		{dev, p + "zone/gate/wl", false, true},
		{dev, p + "zone/b3-door/wl", false, false}, // not its zone
		{dev, p + "dev/gate-1/cmd", false, true},
		{dev, p + "dev/gate-1/wl", false, true},
		{dev, p + "dev/gate-2/cmd", false, false},
		{dev, p + "config", false, true},
		{dev, p + "config", true, false},
		{dev, p + "dev/gate-1/#", false, false}, // no wildcards for devices
		{dev, p + "zone/+/wl", false, false},
		{dev, "onecard/v1/other/dev/gate-1/state", true, false}, // another site
		{dev, p + "dev/gate-1/state/extra", true, false},
		{mon, p + "#", false, true},
		{mon, "onecard/v1/cuihu/#", false, true},
		{mon, p + "dev/gate-1/cmd", true, false},
		{mon, "onecard/v1/#", false, true},
		{mon, "onecard/#", false, false},
		{mon, "#", false, false},
		{srv, p + "zone/gate/wl", true, true},
		{srv, p + "dev/gate-1/cmd", true, true},
		{srv, "elsewhere/x", true, false},
	}
	for _, c := range cases {
		if got := topics.Allowed(c.who, c.topic, c.write); got != c.want {
			t.Errorf("%s %s write=%v: %v, want %v", c.who.Role, c.topic, c.write, got, c.want)
		}
	}
	for _, s := range topics.DeviceSubscriptions(dev.ID, dev.Zones) {
		if !topics.Allowed(dev, s, false) {
			t.Errorf("a device may not subscribe to its own subscription %s", s)
		}
	}
}

func TestRoundTrips(t *testing.T) {
	entry := proto.Entry{Card: "04A23B1C", No: 1000001, From: 1795651200, Until: 1858723200, Sched: "always"}
	change := &proto.Change{V: 1, Zone: "gate", Seq: 1208, Ops: []proto.Op{{Op: "put", Entry: entry}, {Op: "del", Entry: proto.Entry{Card: "04FF0012"}}}}
	b, err := proto.Encode(change)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `{"op":"del","card":"04FF0012"}`) {
		t.Errorf("del encodes as %s", b)
	}
	got, err := proto.Decode[proto.Change](b)
	if err != nil || got.Seq != 1208 || len(got.Ops) != 2 || got.Ops[0].Entry != entry {
		t.Fatalf("change round trip: %+v %v", got, err)
	}
	ev := &proto.Events{V: 1, Events: []proto.Event{{Seq: 1, At: 1, Clock: "ok", Kind: "granted", Card: "04A23B1C", Zone: "gate"},
		{Seq: 2, At: 2, Clock: "unset", Kind: "denied", Card: "04A23B1C", Zone: "gate", Reason: "expired"}}}
	b, _ = proto.Encode(ev)
	if e, err := proto.Decode[proto.Events](b); err != nil || len(e.Events) != 2 || e.Events[1].Reason != "expired" {
		t.Fatalf("events round trip: %+v %v", e, err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"not json", `{"v":1,`, proto.ErrInvalid},
		{"no version", `{"zone":"gate","seq":1,"ops":[]}`, proto.ErrVersion},
		{"version 2", `{"v":2,"zone":"gate","seq":1,"ops":[{"op":"del","card":"04A23B1C"}]}`, proto.ErrVersion},
		{"version as string", `{"v":"1","zone":"gate","seq":1,"ops":[{"op":"del","card":"04A23B1C"}]}`, proto.ErrVersion},
		{"no ops", `{"v":1,"zone":"gate","seq":1,"ops":[]}`, proto.ErrInvalid},
		{"seq 0", `{"v":1,"zone":"gate","seq":0,"ops":[{"op":"del","card":"04A23B1C"}]}`, proto.ErrInvalid},
		{"negative seq", `{"v":1,"zone":"gate","seq":-1,"ops":[{"op":"del","card":"04A23B1C"}]}`, proto.ErrInvalid},
		{"bad zone", `{"v":1,"zone":"Gate/1","seq":1,"ops":[{"op":"del","card":"04A23B1C"}]}`, proto.ErrInvalid},
		{"lower-case card", `{"v":1,"zone":"gate","seq":1,"ops":[{"op":"del","card":"04a23b1c"}]}`, proto.ErrInvalid},
		{"window backwards", `{"v":1,"zone":"gate","seq":1,"ops":[{"op":"put","card":"04A23B1C","no":1,"from":10,"until":5,"sched":"always"}]}`, proto.ErrInvalid},
		{"unknown op", `{"v":1,"zone":"gate","seq":1,"ops":[{"op":"open","card":"04A23B1C"}]}`, proto.ErrInvalid},
		{"seq wrong type", `{"v":1,"zone":"gate","seq":"1","ops":[{"op":"del","card":"04A23B1C"}]}`, proto.ErrInvalid},
	}
	for _, c := range cases {
		if _, err := proto.Decode[proto.Change]([]byte(c.in)); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	big := `{"v":1,"events":[` + strings.Repeat(`{"seq":1,"at":1,"clock":"ok","kind":"tamper"},`, 2000) + `{}]}`
	if _, err := proto.Decode[proto.Events]([]byte(big)); !errors.Is(err, proto.ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	if _, err := proto.Decode[proto.Events]([]byte(`{"v":1,"events":[{"seq":2,"at":1,"clock":"ok","kind":"tamper"},{"seq":1,"at":1,"clock":"ok","kind":"tamper"}]}`)); !errors.Is(err, proto.ErrInvalid) {
		t.Errorf("events out of order: %v", err)
	}
	if _, err := proto.Decode[proto.Events]([]byte(`{"v":1,"events":[{"seq":1,"at":1,"clock":"ok","kind":"granted","reason":"expired"}]}`)); !errors.Is(err, proto.ErrInvalid) {
		t.Errorf("granted with a reason: %v", err)
	}
	if _, err := proto.Encode(&proto.Command{V: 1, ID: "x", Cmd: "open"}); !errors.Is(err, proto.ErrInvalid) {
		t.Errorf("command without expiry encoded: %v", err)
	}
	if _, err := proto.Decode[proto.Config]([]byte(`{"v":1,"tz":"Asia/Shanghai","holidays":["2026-13-01"]}`)); !errors.Is(err, proto.ErrInvalid) {
		t.Errorf("holiday with month 13: %v", err)
	}
	if _, err := proto.Decode[proto.Config]([]byte(`{"v":1,"tz":"Asia/Shanghai","holidays":["2026-10-01"],"schedules":{"w":[{"days":"12345H","from":"08:00","to":"18:00"}]}}`)); err != nil {
		t.Errorf("holidays: %v", err)
	}
	// Unknown fields are ignored within version 1.
	if _, err := proto.Decode[proto.Ack]([]byte(`{"v":1,"zone":"gate","seq":3,"rssi":-40}`)); err != nil {
		t.Errorf("unknown field: %v", err)
	}
}

func TestSnapshotRows(t *testing.T) {
	in := proto.Snapshot{V: 1, Zone: "gate", Seq: 7, Snapshot: "s1", Chunk: 0, Chunks: 1, Entries: []proto.Entry{
		{Card: "04A23B1C", No: 1000001, From: 1795651200, Until: 1858723200, Sched: "always"},
		{Card: "04A23B1C2D3E4F", No: 2, From: 0, Until: 1, Sched: "office", Blocked: true},
	}}
	b, err := proto.Encode(&in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"zone":"gate","seq":7,"snapshot":"s1","chunk":0,"chunks":1,"n":2}` + "\n" +
		"04A23B1C,1000001,1795651200,1858723200,always,0\n04A23B1C2D3E4F,2,0,1,office,1"
	if string(b) != want {
		t.Fatalf("encoded %s, want %s in it", b, want)
	}
	out, err := proto.Decode[proto.Snapshot](b)
	if err != nil || !reflect.DeepEqual(out, in) {
		t.Fatalf("decoded %#v, %v", out, err)
	}
	for _, bad := range []string{
		"04A23B1C,1,10,20,always",                     // five fields
		"04A23B1C,1,10,20,always,0,x",                 // seven
		"04a23b1c,1,10,20,always,0",                   // lower-case card
		"04A23B1C,0,10,20,always,0",                   // number 0
		"04A23B1C,1,20,10,always,0",                   // until before from
		"04A23B1C,1,10,20,always,2",                   // blocked 2
		"04A23B1C,1,10,20,Always,0",                   // schedule id
		"04A23B1C,-1,10,20,always,0",                  // negative number
		"04A23B1C,1,10,20,always,0;",                  // empty row
		"04A23B1C,1,1e3,2e3,always,0",                 // not an integer
		"04A23B1C,1,10,99999999999999999999,always,0", // overflow
	} {
		b := []byte(`{"v":1,"zone":"gate","seq":2,"snapshot":"s1","chunk":0,"chunks":1,"n":1}` + "\n" + bad)
		if _, err := proto.Decode[proto.Snapshot](b); !errors.Is(err, proto.ErrInvalid) {
			t.Errorf("row %q: %v, want invalid", bad, err)
		}
	}
	row := "\n04A23B1C,1,10,20,always,0"
	for _, bad := range []string{
		`{"v":1,"zone":"gate","seq":2,"snapshot":"s1","chunk":0,"chunks":1,"n":2}` + row, // fewer than announced
		`{"v":1,"zone":"gate","seq":2,"snapshot":"s1","chunk":0,"chunks":1,"n":0}` + row, // more
		`{"v":1,"zone":"gate","seq":2,"snapshot":"s1","chunk":0,"chunks":1}` + row,       // no count
		`{"v":1,"zone":"gate","seq":2,"snapshot":"s1","chunk":0,"chunks":1,"n":501}`,
		`{"v":1,"zone":"gate","seq":2,"snapshot":"s1","chunk":0,"chunks":1,"n":-1}`,
		`{"v":1,"zone":"gate","seq":2,"snapshot":"s1","chunk":0,"chunks":1,"n":1`, // header cut
	} {
		if _, err := proto.Decode[proto.Snapshot]([]byte(bad)); !errors.Is(err, proto.ErrInvalid) {
			t.Errorf("%q: %v, want invalid", bad, err)
		}
	}
	if _, err := proto.Decode[proto.Snapshot]([]byte(`{"v":2,"zone":"gate","n":1}` + "\nwhatever")); !errors.Is(err, proto.ErrVersion) {
		t.Errorf("version 2 snapshot: %v, want a version error", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"zone":"gate","seq":1208,"ops":[{"op":"put","card":"04A23B1C","no":1,"from":1,"until":2,"sched":"always"}]}`,
		`{"v":1,"events":[{"seq":1,"at":1,"clock":"ok","kind":"denied","card":"04A23B1C","reason":"blocked"}]}`,
		`{"v":1,"state":"online","session":3,"clock":"unset","applied":{"gate":2}}`,
		`{"v":1,"zone":"gate","seq":2,"snapshot":"s1","chunk":0,"chunks":1,"n":0}`,
		`{"v":1,"zone":"gate","seq":2,"snapshot":"s1","chunk":0,"chunks":2,"n":2}` + "\n04A23B1C,1,10,20,always,0\n04A23B1D,2,10,20,office,1",
		`{"v":1,"zones":{"gate":0}}`, `{"v":1,"tz":"Asia/Shanghai","schedules":{"office":[{"days":"12345","from":"08:00","to":"18:00"}]}}`, `{"v":1,"id":"c1","cmd":"open","expires":5}`, `{"v":1,"seq":9}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Whatever decodes cleanly re-encodes and decodes to the same.
		check := func(p proto.Payload, err error) {
			if err != nil {
				return
			}
			enc, err := proto.Encode(p)
			if err != nil {
				t.Fatalf("decoded %#v does not re-encode: %v", p, err)
			}
			_ = enc
		}
		c, err := proto.Decode[proto.Change](b)
		check(&c, err)
		e, err := proto.Decode[proto.Events](b)
		check(&e, err)
		s, err := proto.Decode[proto.State](b)
		check(&s, err)
		sn, err := proto.Decode[proto.Snapshot](b)
		check(&sn, err)
		if err == nil { // rows survive a round trip exactly
			enc, _ := proto.Encode(&sn)
			again, err := proto.Decode[proto.Snapshot](enc)
			if err != nil || !reflect.DeepEqual(again, sn) {
				t.Fatalf("snapshot round trip: %#v → %s → %#v, %v", sn, enc, again, err)
			}
		}
		sy, err := proto.Decode[proto.Sync](b)
		check(&sy, err)
		cm, err := proto.Decode[proto.Command](b)
		check(&cm, err)
		a, err := proto.Decode[proto.Ack](b)
		check(&a, err)
		ea, err := proto.Decode[proto.EventAck](b)
		check(&ea, err)
		cf, err := proto.Decode[proto.Config](b)
		check(&cf, err)
	})
}
