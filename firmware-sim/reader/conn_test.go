package reader_test

import (
	"sync/atomic"
	"testing"
	"time"

	"onecard/firmware-sim/reader"
	"onecard/fleet/proto"
)

// A reader never waits on its connection. Paho's Publish waits up to its
// write timeout (10 s) when it cannot write, and may wait that long when
// the connection goes down under it: a reader that acknowledged a change
// from its handling stopped applying changes that long, across the
// reconnection (BenchmarkCatchUp caught it one run in fifteen). Here the
// way up is jammed and the reader made to publish until its socket is
// full (a few MB: the clock lost and found, again and again, each time a
// birth); every call still returns at once. Then the connection is cut:
// on the next one a tap made meanwhile is sent and a change applied at
// once.
func TestNothingWaitsOnAJammedConnection(t *testing.T) {
	const id = "gate-1"
	broker := startBroker(t)
	srv := newServer(t, broker)
	px := newJamProxy(t, broker)
	r, stop := start(t, reader.Options{Broker: px.url, ID: id, Zone: "gate"})
	defer stop()
	srv.state(id, born(1))
	srv.send(topics.Zone("gate"), change("gate", 1, put(cardA, 0, never, "always")), false)
	srv.ack(id, "gate", 1)

	px.jam()
	const births = 50000 // about 7 MB; paho's writes block after 2–4
	var calls atomic.Int64
	go func() {
		for i := range births {
			r.SetClock(i%2 == 1)
			calls.Add(1)
		}
	}()
	for last, at := int64(-1), time.Now(); calls.Load() < births; time.Sleep(5 * time.Millisecond) {
		if n := calls.Load(); n != last {
			last, at = n, time.Now()
		} else if time.Since(at) > wait {
			t.Fatalf("SetClock waited for the jammed connection (call %d)", n+1)
		}
	}
	if d := r.Tap(cardA); !d.Granted {
		t.Fatalf("tap: %+v", d)
	}

	r.Offline(true)
	r.Offline(false)
	srv.state(id, born(2))
	if evs := expect[proto.Events](srv, proto.KindEvt, id, nil).Events; len(evs) != 1 || evs[0].Card != cardA {
		t.Errorf("events %s, want the tap", mustJSON(evs))
	}
	srv.send(topics.Zone("gate"), change("gate", 2, put(cardB, 0, never, "always")), false)
	srv.ack(id, "gate", 2)
}
