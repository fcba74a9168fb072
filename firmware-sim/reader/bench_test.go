package reader_test

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"onecard/firmware-sim/reader"
	"onecard/fleet/proto"
)

var fleetSize = flag.Int("fleet", 1000, "readers in BenchmarkFleet")

// BenchmarkFleet runs -fleet readers in this process against an in-process
// broker: each iteration broadcasts one whitelist change and waits until
// every reader has acknowledged it. It reports how long the fleet took to
// come online, and the time from a change to its last acknowledgement.
func BenchmarkFleet(b *testing.B) {
	broker := startBroker(b)
	srv := newServer(b, broker)
	began := time.Now()
	f, err := reader.StartFleet(context.Background(), reader.Options{Broker: broker, Site: site, Zone: "gate"}, *fleetSize, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Stop()
	for f.Online() < *fleetSize {
		if time.Since(began) > time.Minute {
			b.Fatalf("%d of %d online after a minute", f.Online(), *fleetSize)
		}
		time.Sleep(10 * time.Millisecond)
	}
	toOnline := time.Since(began)
	seq := uint64(0)
	for b.Loop() {
		seq++
		srv.send(topics.Zone("gate"), change("gate", seq, put(fmt.Sprintf("04%06X", seq), 0, never, "always")), false)
		acked := map[string]bool{}
		for len(acked) < *fleetSize {
			select {
			case m := <-srv.kinds[proto.KindAck]:
				if a, err := proto.Decode[proto.Ack](m.payload); err == nil && a.Seq == seq {
					acked[m.device] = true
				}
			case <-time.After(time.Minute):
				b.Fatalf("%d of %d acknowledged change %d", len(acked), *fleetSize, seq)
			}
		}
	}
	b.ReportMetric(toOnline.Seconds(), "s-to-online")
}
