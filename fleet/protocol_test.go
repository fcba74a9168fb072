package fleet_test

import (
	"context"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"onecard/fleet"
	"onecard/fleet/proto"
	"onecard/store/storetest"
)

// rawDevice is a bare MQTT client speaking as a device, to send what a
// well-behaved reader never would.
type rawDevice struct {
	c      mqtt.Client
	topics proto.Topics
	id     string
	mu     sync.Mutex
	got    map[string][][]byte
}

func dialDevice(t *testing.T, w *world, id string) *rawDevice {
	t.Helper()
	d := &rawDevice{topics: proto.Topics{Site: w.site}, id: id, got: map[string][][]byte{}}
	o := mqtt.NewClientOptions().AddBroker(w.url).SetClientID(id).SetUsername(id).SetPassword(w.secrets[id]).SetCleanSession(true)
	d.c = mqtt.NewClient(o)
	if tok := d.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { d.c.Disconnect(0) })
	for _, k := range []string{proto.KindEvtAck, proto.KindWL, proto.KindSnap} {
		k := k
		tok := d.c.Subscribe(d.topics.Device(id, k), 1, func(_ mqtt.Client, m mqtt.Message) {
			d.mu.Lock()
			d.got[k] = append(d.got[k], m.Payload())
			d.mu.Unlock()
		})
		tok.WaitTimeout(5 * time.Second)
	}
	return d
}

func (d *rawDevice) send(t *testing.T, kind string, payload string) {
	t.Helper()
	tok := d.c.Publish(d.topics.Device(d.id, kind), 1, kind == proto.KindState, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", kind, tok.Error())
	}
}

func (d *rawDevice) lastEvtAck() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.got[proto.KindEvtAck]); n > 0 {
		a, _ := proto.Decode[proto.EventAck](d.got[proto.KindEvtAck][n-1])
		return a.Seq
	}
	return 0
}

func TestProtocolEdges(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t), true, []fleet.NewDevice{{Code: "gate-1", Kind: "turnstile", Zones: []string{"gate"}}})
	d := dialDevice(t, w, "gate-1")
	ctx := context.Background()
	online := func() bool {
		dev, err := w.fleet.Device(ctx, "gate-1")
		if err != nil {
			t.Fatal(err)
		}
		return dev.Online
	}

	// Birth in session 2, then a late will of session 1: still online.
	d.send(t, proto.KindState, `{"v":1,"state":"online","session":2,"clock":"ok","applied":{}}`)
	eventually(t, "online", online)
	d.send(t, proto.KindState, `{"v":1,"state":"offline","session":1}`)
	time.Sleep(200 * time.Millisecond)
	if !online() {
		t.Fatal("a stale will marked the device offline")
	}
	d.send(t, proto.KindState, `{"v":1,"state":"offline","session":2}`)
	eventually(t, "offline", func() bool { return !online() })

	// Garbage is rejected and counted, nothing else happens.
	before := w.fleet.Stats().Rejected.Load()
	d.send(t, proto.KindEvt, `{"v":1,"events":[{"seq":"x"}]}`)
	d.send(t, proto.KindEvt, `{"v":2,"events":[{"seq":1,"at":1,"clock":"ok","kind":"tamper"}]}`)
	d.send(t, proto.KindAck, `{"v":1,"zone":"gate","seq":99}`) // never sent
	d.send(t, proto.KindAck, `{"v":1,"zone":"b3","seq":1}`)    // not its zone
	eventually(t, "four rejections", func() bool { return w.fleet.Stats().Rejected.Load() >= before+4 })
	time.Sleep(100 * time.Millisecond)
	if n := w.fleet.Stats().Rejected.Load() - before; n != 4 {
		t.Fatalf("%d rejections, want 4", n)
	}
	if n := w.events(t); n != 0 {
		t.Fatalf("%d events stored from garbage", n)
	}
	dev, _ := w.fleet.Device(ctx, "gate-1")
	if dev.Zones[0].Acked != 0 {
		t.Fatalf("an ack for a change never sent was recorded: %+v", dev.Zones)
	}

	// Events: a gap holds the acknowledgement back; replays store nothing twice.
	ev := func(seq int) string {
		return `{"seq":` + string(rune('0'+seq)) + `,"at":1795690000000,"clock":"ok","kind":"granted","card":"04A23B1C","zone":"gate"}`
	}
	d.send(t, proto.KindEvt, `{"v":1,"events":[`+ev(1)+`,`+ev(2)+`,`+ev(4)+`]}`)
	eventually(t, "ack 2", func() bool { return d.lastEvtAck() == 2 })
	d.send(t, proto.KindEvt, `{"v":1,"events":[`+ev(1)+`,`+ev(2)+`,`+ev(3)+`]}`)
	eventually(t, "ack 4", func() bool { return d.lastEvtAck() == 4 })
	d.send(t, proto.KindEvt, `{"v":1,"events":[`+ev(4)+`]}`)
	eventually(t, "the replay acknowledged", func() bool { return w.fleet.Stats().Duplicates.Load() == 3 })
	if n := w.events(t); n != 4 {
		t.Fatalf("%d events stored, want 4", n)
	}

	// A device far behind gets a snapshot; one slightly behind, the changes.
	for i := 0; i < 3; i++ {
		w.change(t, "gate", put("04A23B1C", 1000001, i%2 == 1))
	}
	d.send(t, proto.KindSync, `{"v":1,"zones":{"gate":1}}`)
	eventually(t, "two resent changes", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.got[proto.KindWL]) == 2
	})
	d.send(t, proto.KindState, `{"v":1,"state":"online","session":3,"clock":"ok","applied":{"gate":7}}`) // claims the future
	eventually(t, "a snapshot for a device that claims changes never made", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.got[proto.KindSnap]) == 0 {
			return false
		}
		s, err := proto.Decode[proto.Snapshot](d.got[proto.KindSnap][0])
		return err == nil && s.Seq == 3 && len(s.Entries) == 1 && s.Entries[0].Blocked == false
	})
}
