package passes_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"onecard/devices/broker"
	"onecard/firmware-sim/reader"
	"onecard/fleet"
	"onecard/fleet/proto"
	"onecard/passes"
	"onecard/store/storetest"
)

func benchInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkGateVerdict measures the scan-to-verdict round trip through a
// gate terminal over MQTT: T simulated gate terminals
// (ONECARD_BENCH_TERMINALS, 10) each scan a valid pass K times in a row
// (ONECARD_BENCH_SCANS, 100): the pass_scan event is published (QoS 1),
// stored by the fleet with the check recorded in the same transaction,
// the verdict sent back as a command, and matched by the terminal.
//
// The floor, in the same run, on the same embedded broker, before the
// fleet service starts: T bare clients with the terminals' identities
// each publish the same event payload on their evt topic and wait for a
// reply on their cmd topic; one bare client with the server's identity
// answers each with a verdict command of the same size. No onecard logic.
//
// Reported: p50 and p99 of both (nearest rank), verdicts per second, and
// p99-ratio = onecard's p99 ÷ the floor's (the issue's target: ≤ 3).
func BenchmarkGateVerdict(b *testing.B) {
	terminals, scans := benchInt("ONECARD_BENCH_TERMINALS", 10), benchInt("ONECARD_BENCH_SCANS", 100)
	for b.Loop() {
		floor, got, floorRate, rate := gateVerdicts(b, terminals, scans)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(pct(floor, 0.5)), "floor-p50-ms")
		b.ReportMetric(ms(pct(floor, 0.99)), "floor-p99-ms")
		b.ReportMetric(ms(pct(got, 0.5)), "p50-ms")
		b.ReportMetric(ms(pct(got, 0.99)), "p99-ms")
		b.ReportMetric(floorRate, "floor-per-s")
		b.ReportMetric(rate, "verdicts/s")
		b.ReportMetric(float64(pct(got, 0.99))/float64(pct(floor, 0.99)), "p99-ratio")
	}
}

func pct(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(float64(len(s))*p)) - 1
	return s[max(0, min(len(s)-1, i))]
}

func gateVerdicts(b *testing.B, terminals, scans int) (floor, got []time.Duration, floorRate, rate float64) {
	ctx := context.Background()
	s := newSite(b, storetest.SQLite(b))
	realClock := func() time.Time { return time.Now().UTC() }
	s.p.SetClock(realClock)
	s.bill.SetClock(realClock)
	site := s.es.Site()
	fl, err := fleet.New(s.db, site.ID, site.Code, fleet.Options{ServerSecret: serverSecret, PassKeys: s.p.PublicKeys(), Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	fl.HandleEvents(s.p.GateEvents(fl, quiet), passes.GateEventKinds...)
	ids := make([]string, terminals)
	secrets := map[string]string{}
	for i := range ids {
		ids[i] = fmt.Sprintf("gate-%03d", i)
		_, secret, err := fl.AddDevice(ctx, fleet.NewDevice{Code: ids[i], Kind: "gate-terminal", Zones: []string{"gate"}})
		if err != nil {
			b.Fatal(err)
		}
		secrets[ids[i]] = secret
	}
	br, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Site: site.Code, Auth: fl, Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	url := "tcp://" + br.Addr()
	p := s.issue(b, ownerPass(s))
	topics := proto.Topics{Site: site.Code}

	// The same payloads as the real exchange.
	evt := func(seq int) []byte {
		out, _ := proto.Encode(&proto.Events{V: proto.Version, Events: []proto.Event{{Seq: uint64(seq), At: time.Now().UnixMilli(), Clock: "ok",
			Kind: "pass_scan", Zone: "gate", Data: p.Code}}})
		return out
	}
	verdict, _ := proto.Encode(&proto.Command{V: proto.Version, ID: "0123456789abcdef", Cmd: "verdict", Expires: time.Now().Add(time.Minute).UnixMilli(),
		Verdict: &proto.Verdict{Scan: 1, OK: true, Pass: p.Number, Unit: p.Unit, Items: p.ItemsText(), Plate: p.Plate, Until: p.ValidUntil.UnixMilli()}})

	// Floor.
	server := dial(b, url, "floor.server", fleet.ServerUser, serverSecret)
	server.Subscribe(topics.Prefix()+"dev/+/evt", 1, func(c mqtt.Client, m mqtt.Message) {
		t, _ := topics.Parse(m.Topic())
		c.Publish(topics.Device(t.Device, proto.KindCmd), 1, false, verdict)
	}).Wait()
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply := make(chan struct{}, 1)
			c := dial(b, url, id, id, secrets[id])
			defer c.Disconnect(0)
			c.Subscribe(topics.Device(id, proto.KindCmd), 1, func(mqtt.Client, mqtt.Message) { reply <- struct{}{} }).Wait()
			var mine []time.Duration
			for i := 1; i <= scans; i++ {
				t0 := time.Now()
				c.Publish(topics.Device(id, proto.KindEvt), 1, false, evt(i))
				select {
				case <-reply:
				case <-time.After(10 * time.Second):
					b.Errorf("floor: no reply for %s", id)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			floor = append(floor, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	floorRate = float64(len(floor)) / time.Since(start).Seconds()
	server.Disconnect(0)
	if b.Failed() {
		b.FailNow()
	}

	// onecard: the fleet service and the passes service behind it, and
	// the simulated terminals.
	sctx, stop := context.WithCancel(ctx)
	b.Cleanup(stop)
	bus, err := fleet.DialPaho(sctx, url, "onecard.server."+site.Code, fleet.ServerUser, serverSecret)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bus.Close)
	go fl.Run(sctx, bus)
	term := make([]*reader.Reader, len(ids))
	for i, id := range ids {
		r, err := reader.New(reader.Options{Broker: url, Site: site.Code, ID: id, Secret: secrets[id], Zone: "gate", VerdictWait: 10 * time.Second, Log: quiet})
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); r.Run(rctx) }()
		b.Cleanup(func() { cancel(); <-done })
		term[i] = r
	}
	for _, r := range term {
		for deadline := time.Now().Add(30 * time.Second); !r.Online() || r.Status().PassKeys == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("%s never came online", r.ID())
			}
		}
	}
	start = time.Now()
	for _, r := range term {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; i < scans; i++ {
				t0 := time.Now()
				v, err := r.ScanPass(ctx, p.Code)
				if err != nil || !v.OK || v.Offline {
					b.Errorf("%s scan %d: %+v %v", r.ID(), i, v, err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			got = append(got, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	rate = float64(len(got)) / time.Since(start).Seconds()
	if b.Failed() {
		b.FailNow()
	}
	// The verdict leaves before the check is recorded (by design): the
	// last ones may still be on their way to the table.
	var checks int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.db.Get(ctx, &checks, "SELECT COUNT(*) FROM pass_checks WHERE kind = 'scan' AND ok")
		if checks >= terminals*scans || time.Now().After(deadline) {
			break
		}
	}
	if checks != terminals*scans {
		b.Fatalf("%d scans recorded, want %d", checks, terminals*scans)
	}
	return floor, got, floorRate, rate
}

func dial(b testing.TB, url, clientID, user, pass string) mqtt.Client {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetOrderMatters(false).SetConnectTimeout(30 * time.Second)
	c := mqtt.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(30*time.Second) || t.Error() != nil {
		b.Fatalf("connect %s: %v", clientID, t.Error())
	}
	return c
}
