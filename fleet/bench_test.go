package fleet_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
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

// benchReaders is the fleet size: 100 by default so that go test -bench
// stays quick; ONECARD_BENCH_READERS=1000 for the recorded run.
func benchReaders() int { return envInt("ONECARD_BENCH_READERS", 100) }

// benchCards is the number of active cards on the zone's whitelist, which
// every reader holds before changes are measured: 1,000 by default;
// ONECARD_BENCH_CARDS=50000 for the recorded run.
func benchCards() int { return envInt("ONECARD_BENCH_CARDS", 1000) }

// envInt reads a positive size from the environment.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// benchDevices are n readers r0000… in one zone.
func benchDevices(n int, zone string) []fleet.NewDevice {
	devs := make([]fleet.NewDevice, n)
	for i := range devs {
		devs[i] = fleet.NewDevice{Code: fmt.Sprintf("r%04d", i), Kind: "reader", Zones: []string{zone}}
	}
	return devs
}

// dialAs connects bare clients with the devices' identities, in parallel;
// setup, if given, runs on each before it counts as connected.
func (w *world) dialAs(b *testing.B, devs []fleet.NewDevice, setup func(c mqtt.Client, id string)) []mqtt.Client {
	clients := make([]mqtt.Client, len(devs))
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := devs[i].Code
			c := dialBench(b, w.url, id, id, w.secrets[id])
			if setup != nil {
				setup(c, id)
			}
			clients[i] = c
		}(i)
	}
	wg.Wait()
	return clients
}

// startBenchReaders runs a simulated reader for each device, guarding zone.
func (w *world) startBenchReaders(b *testing.B, ctx context.Context, devs []fleet.NewDevice, zone string) *reader.Fleet {
	opts := make([]reader.Options, len(devs))
	for i, d := range devs {
		opts[i] = reader.Options{Broker: w.url, Site: w.site, ID: d.Code, Secret: w.secrets[d.Code], Zone: zone, Log: quiet}
	}
	fl, err := reader.StartReaders(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	return fl
}

// percentile is the nearest-rank percentile: the 99th of 100 samples for
// p = 0.99 (before this was fixed it returned the 100th, the maximum).
func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(float64(len(s))*p)) - 1
	return s[max(0, min(len(s)-1, i))]
}

// BenchmarkPropagation measures, with N readers in one zone, the time from
// a whitelist change's commit until every reader has acknowledged it to
// the server (100 changes), against a floor measured in the same run on
// the same broker with the same N clients: one publish to the zone topic,
// each client acknowledging on its own topic, until all acknowledgements
// have arrived. It reports p50 and p99 of both and the ratio of the p99s.
func BenchmarkPropagation(b *testing.B) {
	n := benchReaders()
	const changes = 100
	for b.Loop() {
		db := storetest.SQLite(b)
		floor, got := propagation(b, db, n, changes)
		b.ReportMetric(float64(percentile(floor, 0.5).Microseconds())/1000, "floor-p50-ms")
		b.ReportMetric(float64(percentile(floor, 0.99).Microseconds())/1000, "floor-p99-ms")
		b.ReportMetric(float64(percentile(got, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(got, 0.99).Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(percentile(got, 0.99))/float64(percentile(floor, 0.99)), "p99-ratio")
		b.ReportMetric(float64(n), "readers")
		b.ReportMetric(float64(benchCards()), "cards")
	}
}

func propagation(b *testing.B, db *store.DB, n, changes int) (floor, got []time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	devs := benchDevices(n, "gate")
	w := newBenchWorld(b, db, devs)

	// The floor: N bare clients with the readers' identities, the server's
	// identity publishing a change-sized message to the zone.
	payload, _ := proto.Encode(&proto.Change{V: 1, Zone: "gate", Seq: 1, Ops: []proto.Op{put("04A23B1C", 1000001, false)}})
	var acks atomic.Int64
	done := make(chan struct{}, 1)
	server := dialBench(b, w.url, "floor.server", fleet.ServerUser, serverSecret)
	server.Subscribe(w.topics.Prefix()+"dev/+/ack", 1, func(_ mqtt.Client, _ mqtt.Message) {
		if acks.Add(1) == int64(n) {
			done <- struct{}{}
		}
	}).Wait()
	ack, _ := proto.Encode(&proto.Ack{V: 1, Zone: "gate", Seq: 1})
	clients := w.dialAs(b, devs, func(c mqtt.Client, id string) {
		c.Subscribe(w.topics.Zone("gate"), 1, func(c mqtt.Client, _ mqtt.Message) {
			c.Publish(w.topics.Device(id, proto.KindAck), 1, false, ack)
		}).Wait()
	})
	for i := 0; i < changes; i++ {
		acks.Store(0)
		start := time.Now()
		server.Publish(w.topics.Zone("gate"), 1, false, payload).Wait()
		<-done
		floor = append(floor, time.Since(start))
	}
	for _, c := range clients {
		c.Disconnect(0)
	}
	server.Disconnect(0)

	// onecard: the fleet service and N simulated readers, each of which
	// first gets the zone's whitelist of active cards in a snapshot.
	cards := benchCards()
	preload(b, db, w, "gate", cards)
	w.startService(b, ctx)
	fl := w.startBenchReaders(b, ctx, devs, "gate")
	defer fl.Stop()
	for _, r := range fl.Readers() {
		for r.Whitelist("gate") != cards {
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcked := func(seq uint64) {
		if err := w.fleet.WaitAcknowledged(ctx, "gate", seq); err != nil {
			b.Fatal(err)
		}
	}
	seq := w.change(b, "gate", put("04A23B1C", 1000001, false))
	waitAcked(seq)
	for i := 0; i < changes; i++ {
		start := time.Now()
		seq := w.change(b, "gate", put("04A23B1C", 1000001, i%2 == 0))
		waitAcked(seq)
		got = append(got, time.Since(start))
	}
	return floor, got
}

// dialBench connects a bare client; set, if given, changes its options.
func dialBench(b *testing.B, url, clientID, user, pass string, set ...func(*mqtt.ClientOptions)) mqtt.Client {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetOrderMatters(false).SetConnectTimeout(30 * time.Second)
	for _, f := range set {
		f(o)
	}
	c := mqtt.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(30*time.Second) || t.Error() != nil {
		b.Fatalf("connect %s: %v", clientID, t.Error())
	}
	return c
}

// BenchmarkEvents measures access events per second from N readers into
// the database (each reader taps K cards in a burst; every event is
// counted stored exactly once), against a floor measured in the same run
// on the same broker with the same identities: each client publishes K
// one-event messages at QoS 1 and the server client counts them.
func BenchmarkEvents(b *testing.B) {
	n := benchReaders()
	const k = 50
	for b.Loop() {
		db := storetest.SQLite(b)
		floor, got := eventsRun(b, db, n, k)
		b.ReportMetric(floor, "floor-events/s")
		b.ReportMetric(got, "events/s")
		b.ReportMetric(got/floor, "ratio")
		b.ReportMetric(float64(n), "readers")
	}
}

func eventsRun(b *testing.B, db *store.DB, n, k int) (floor, got float64) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	devs := benchDevices(n, "gate")
	w := newBenchWorld(b, db, devs)
	total := int64(n * k)

	// Floor: the same identities publish one-event messages at QoS 1.
	var recv atomic.Int64
	done := make(chan struct{}, 1)
	server := dialBench(b, w.url, "floor.server", fleet.ServerUser, serverSecret)
	server.Subscribe(w.topics.Prefix()+"dev/+/evt", 1, func(_ mqtt.Client, _ mqtt.Message) {
		if recv.Add(1) == total {
			done <- struct{}{}
		}
	}).Wait()
	clients := w.dialAs(b, devs, nil)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c mqtt.Client) {
			defer wg.Done()
			for s := 1; s <= k; s++ {
				p, _ := proto.Encode(&proto.Events{V: 1, Events: []proto.Event{{Seq: uint64(s), At: time.Now().UnixMilli(), Clock: "ok",
					Kind: "granted", Card: "04A23B1C", Zone: "gate"}}})
				c.Publish(w.topics.Device(devs[i].Code, proto.KindEvt), 1, false, p).Wait()
			}
		}(i, c)
	}
	<-done
	floor = float64(total) / time.Since(start).Seconds()
	wg.Wait()
	for _, c := range clients {
		c.Disconnect(0)
	}
	server.Disconnect(0)

	// onecard: the fleet service and N simulated readers, each tapping K
	// cards; every event stored once and acknowledged.
	w.startService(b, ctx)
	seq := w.change(b, "gate", put("04A23B1C", 1000001, false))
	fl := w.startBenchReaders(b, ctx, devs, "gate")
	defer fl.Stop()
	if err := w.fleet.WaitAcknowledged(ctx, "gate", seq); err != nil {
		b.Fatal(err)
	}
	before := w.fleet.Stats().Events.Load()
	start = time.Now()
	for _, r := range fl.Readers() {
		wg.Add(1)
		go func(r *reader.Reader) {
			defer wg.Done()
			for s := 0; s < k; s++ {
				r.Tap("04A23B1C")
			}
		}(r)
	}
	wg.Wait()
	for w.fleet.Stats().Events.Load()-before < total {
		time.Sleep(time.Millisecond)
	}
	got = float64(total) / time.Since(start).Seconds()
	var stored int64
	if err := db.Get(ctx, &stored, "SELECT COUNT(*) FROM access_events"); err != nil {
		b.Fatal(err)
	}
	if stored != total || w.fleet.Stats().Duplicates.Load() != 0 {
		b.Fatalf("%d events stored, %d duplicates; want %d and 0", stored, w.fleet.Stats().Duplicates.Load(), total)
	}
	return floor, got
}
