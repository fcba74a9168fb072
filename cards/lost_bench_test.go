package cards_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"onecard/auth"
	"onecard/billing"
	"onecard/cards"
	"onecard/devices/broker"
	"onecard/estate"
	pn532sim "onecard/firmware-sim/pn532"
	"onecard/firmware-sim/reader"
	"onecard/fleet"
	"onecard/fleet/proto"
	"onecard/store"
	"onecard/store/storetest"
	"onecard/web"
)

// lostReaders is the number of readers at the gate: 100 by default so
// that go test -bench stays quick; ONECARD_BENCH_READERS=1000 for the
// recorded run.
func lostReaders() int {
	if n, err := strconv.Atoi(os.Getenv("ONECARD_BENCH_READERS")); err == nil && n > 0 {
		return n
	}
	return 100
}

// lostCards is the number of cards reported lost, one at a time.
const lostCards = 100

// BenchmarkReportLost measures, with N readers at the gate each holding
// 100 issued cards, the time from just before the clerk's report of a
// lost card (Register.ReportLost: the card's state, three whitelist
// changes, the card event and the audit row in one transaction, then the
// outbox publish) until every reader has acknowledged the change of the
// gate's whitelist that blocks it, as the fleet service knows it
// (fleet.Service.WaitAcknowledged; a reader acknowledges a change only
// once it has applied it, so from then on it denies the card). 100 cards.
//
// The floor, measured first in the same run on the same broker with the
// same N identities as bare MQTT clients: one change-sized publish on the
// gate's topic, each client acknowledging on its own topic, until all N
// acknowledgements have reached the publishing client. 100 rounds.
//
// Then the same 100 losses again (after unblocking the cards) through
// HTTP: a Fiber app on a loopback port with onecard's session guard, the
// clerk's session cookie and CSRF token, and a route that does what the
// desk's POST /cards/:id/lost does (form in, ReportLost, 303 out).
//
// The benchmark checks its results: every round acknowledged by every
// reader, the zone sequence and change log as expected, every reader
// holding every card blocked, and taps on a sample of readers denied
// "blocked".
func BenchmarkReportLost(b *testing.B) {
	n := lostReaders()
	for b.Loop() {
		r := reportLostRun(b, n)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(lostPct(r.floor, 0.5)), "floor-p50-ms")
		b.ReportMetric(ms(lostPct(r.floor, 0.99)), "floor-p99-ms")
		b.ReportMetric(ms(lostPct(r.got, 0.5)), "p50-ms")
		b.ReportMetric(ms(lostPct(r.got, 0.99)), "p99-ms")
		b.ReportMetric(float64(lostPct(r.got, 0.99))/float64(lostPct(r.floor, 0.99)), "p99-ratio")
		b.ReportMetric(ms(slices.Max(r.floor)), "floor-max-ms")
		b.ReportMetric(ms(slices.Max(r.got)), "max-ms")
		b.ReportMetric(ms(lostPct(r.call, 0.5)), "call-p50-ms")
		b.ReportMetric(ms(lostPct(r.call, 0.99)), "call-p99-ms")
		b.ReportMetric(ms(lostPct(r.http, 0.5)), "http-p50-ms")
		b.ReportMetric(ms(lostPct(r.http, 0.99)), "http-p99-ms")
		b.ReportMetric(float64(lostPct(r.http, 0.99))/float64(lostPct(r.floor, 0.99)), "http-p99-ratio")
		b.ReportMetric(ms(lostPct(r.httpCall, 0.5)), "http-call-p50-ms")
		b.ReportMetric(ms(lostPct(r.httpCall, 0.99)), "http-call-p99-ms")
		b.ReportMetric(float64(n), "readers")
		b.ReportMetric(lostCards, "cards")
		if os.Getenv("ONECARD_BENCH_SAMPLES") != "" {
			for _, s := range []struct {
				name string
				d    []time.Duration
			}{{"floor", r.floor}, {"lost", r.got}, {"call", r.call}, {"http", r.http}, {"http-call", r.httpCall}} {
				b.Logf("%s: %v", s.name, s.d)
			}
		}
	}
}

// lostProfile writes a CPU profile of one pass to
// $ONECARD_BENCH_CPUPROFILE-<name> when that is set; it returns the stop.
func lostProfile(b *testing.B, name string) func() {
	base := os.Getenv("ONECARD_BENCH_CPUPROFILE")
	if base == "" {
		return func() {}
	}
	f, err := os.Create(base + "-" + name)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// lostPct is the p-th percentile by nearest rank: the ⌈p·n⌉-th smallest (of
// 100 samples, p99 is the 99th, not the largest; fleet's benchmarks take
// the largest, reported here as max).
func lostPct(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[max(0, min(len(s), int(math.Ceil(float64(len(s))*p)))-1)]
}

type lostResult struct {
	floor    []time.Duration // bare fan-out with acknowledgements
	got      []time.Duration // ReportLost → all readers acknowledged
	call     []time.Duration // ReportLost returning (the commit)
	http     []time.Duration // HTTP request → all readers acknowledged
	httpCall []time.Duration // HTTP request → 303 received
}

// lostEstate is the register and everything around it.
type lostEstate struct {
	db      *store.DB
	site    string
	topics  proto.Topics
	url     string
	es      *estate.Service
	as      *auth.Service
	fl      *fleet.Service
	reg     *cards.Register
	rig     *rig
	clerk   context.Context
	secrets map[string]string
	devs    []string
	readers []*reader.Reader
	zoneID  int64 // the gate's
}

func reportLostRun(b *testing.B, n int) lostResult {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newLostEstate(b, n)
	issued := e.issueCards(b, lostCards)
	var res lostResult

	// The floor: N bare clients with the readers' identities; the server's
	// identity publishes a change the size of a loss to the gate's topic.
	stopProfile := lostProfile(b, "floor")
	res.floor = e.floor(b, issued[0], lostCards)
	stopProfile()

	// onecard: the fleet service, then N simulated readers, each of which
	// gets the gate's whitelist of the 100 cards.
	bus, err := fleet.DialPaho(ctx, e.url, "onecard.server."+e.site, fleet.ServerUser, serverSecret)
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	go e.fl.Run(ctx, bus)
	// The 300 changes of issuing go out before any reader is there.
	e.settle(b, nil)
	opts := make([]reader.Options, n)
	for i, id := range e.devs {
		opts[i] = reader.Options{Broker: e.url, Site: e.site, ID: id, Secret: e.secrets[id], Zone: "gate", Log: quiet}
	}
	rf, err := reader.StartReaders(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer rf.Stop()
	readers := rf.Readers()
	e.readers = readers
	seq := e.gateSeq(b)
	e.waitUntil(b, "every reader holding every card", func() bool {
		for _, r := range readers {
			if r.Whitelist("gate") != len(issued) || r.Applied()["gate"] < seq {
				return false
			}
		}
		return true
	})
	e.waitAcked(b, seq)
	e.checkReaders(b, readers, issued, false)
	sample := lostSampleOf(readers, 20)
	for _, r := range sample[:5] { // a few taps, then their events are let through
		if d := r.Tap(*issued[0].UID); !d.Granted {
			b.Fatalf("%s: issued card %s: %+v", r.ID(), *issued[0].UID, d)
		}
	}
	e.settle(b, sample)

	// Measured: ReportLost, card after card, each until all readers hold it.
	stopProfile = lostProfile(b, "lost")
	for _, c := range issued {
		want := seq + 1
		start := time.Now()
		rec, err := e.reg.ReportLost(e.clerk, c.ID, "丢失")
		res.call = append(res.call, time.Since(start))
		if err != nil || rec.State != "blocked" {
			b.Fatalf("lost %d: %+v %v", c.ID, rec, err)
		}
		e.waitAcked(b, want)
		res.got = append(res.got, time.Since(start))
		seq = e.checkChange(b, want, *c.UID, true)
	}
	stopProfile()
	e.checkReaders(b, readers, issued, true)
	e.checkTaps(b, sample, issued)

	// The same through HTTP: unblock every card (not timed; one at a time,
	// as a burst of 100 changes would leave the outbox publishing for
	// seconds into the measured rounds), then report each lost with the
	// clerk's form post.
	for _, c := range issued {
		if _, err := e.reg.Unblock(e.clerk, c.ID, "找到"); err != nil {
			b.Fatal(err)
		}
		seq = e.checkChange(b, seq+1, *c.UID, false)
		e.waitAcked(b, seq)
	}
	e.settle(b, sample)
	e.checkReaders(b, readers, issued, false)
	h := e.startHTTP(b)
	for _, c := range issued {
		want := seq + 1
		start := time.Now()
		loc := h.reportLost(b, c.ID)
		res.httpCall = append(res.httpCall, time.Since(start))
		e.waitAcked(b, want)
		res.http = append(res.http, time.Since(start))
		if loc != fmt.Sprintf("/cards/%d?done=lost", c.ID) {
			b.Fatalf("lost over HTTP: redirected to %q", loc)
		}
		if rec, err := e.reg.Card(ctx, c.ID); err != nil || rec.State != "blocked" {
			b.Fatalf("lost over HTTP: %+v %v", rec, err)
		}
		seq = e.checkChange(b, want, *c.UID, true)
	}
	e.checkReaders(b, readers, issued, true)
	e.checkTaps(b, sample, issued)
	return res
}

func newLostEstate(b *testing.B, n int) *lostEstate {
	ctx := context.Background()
	db := storetest.SQLite(b)
	site := fmt.Sprintf("t%06x", time.Now().UnixNano()&0xffffff)
	es, err := estate.Open(ctx, db, site, "测试", "Asia/Shanghai")
	if err != nil {
		b.Fatal(err)
	}
	as := auth.New(db, auth.DefaultPolicy)
	st, err := as.CreateStaff(ctx, auth.NewStaff{Username: "clerk1", Role: auth.Clerk, Password: "clerk1-password-1"})
	if err != nil {
		b.Fatal(err)
	}
	clerk := auth.WithActor(ctx, auth.Actor{Kind: "staff", ID: st.ID, Name: "clerk1", Role: auth.Clerk})
	bk, err := billing.Open(ctx, db, es.Site(), billing.Options{Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bk.SaveFeeItem(clerk, billing.FeeItem{Code: "card_fee", Name: "门禁卡工本费", Kind: "one_off", PriceFen: 2000}); err != nil {
		b.Fatal(err)
	}
	fl, err := fleet.New(db, es.Site().ID, site, fleet.Options{ServerSecret: serverSecret, Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	e := &lostEstate{db: db, site: site, topics: proto.Topics{Site: site}, es: es, as: as, fl: fl, clerk: clerk, secrets: map[string]string{}}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("r%04d", i)
		_, secret, err := fl.AddDevice(ctx, fleet.NewDevice{Code: id, Kind: "reader", Zones: []string{"gate"}})
		if err != nil {
			b.Fatal(err)
		}
		e.secrets[id] = secret
		e.devs = append(e.devs, id)
	}
	if err := db.Get(ctx, &e.zoneID, "SELECT id FROM zones WHERE site_id = ? AND code = ?", es.Site().ID, "gate"); err != nil {
		b.Fatal(err)
	}
	br, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Site: site, Auth: fl, Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	fl.OnDisable(br.Disconnect)
	e.url = "tcp://" + br.Addr()

	rig := newRig(b, 0, 0)
	station := cards.NewStation("sim")
	station.Attach(rig.enc, "PN532 v1.6")
	rig.sim.Remove()
	e.reg, err = cards.OpenRegister(ctx, cards.RegisterDeps{DB: db, Estate: es, Billing: bk, Fleet: fl, Station: station, Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.reg.SavePolicy(clerk, cards.Policy{FreePerHousehold: 1, MaxPerHousehold: 4, FeeFen: 2000, OwnerMonths: 24}); err != nil {
		b.Fatal(err)
	}
	e.rig = rig
	return e
}

// issueCards makes n handed-over units in building 1, each with an owner,
// and applies for and issues the owner's card on a new blank card.
func (e *lostEstate) issueCards(b *testing.B, n int) []cards.Record {
	rig := e.rig
	out := make([]cards.Record, 0, n)
	for i := 0; i < n; i++ {
		code := fmt.Sprintf("1-1-%d%02d", i/4+1, i%4+1)
		if _, err := e.es.CreateUnit(e.clerk, estate.UnitInput{Code: code, Area: 9000, HandoverDate: "2020-01-01"}); err != nil {
			b.Fatal(err)
		}
		o, err := e.es.MoveIn(e.clerk, code, estate.MoveIn{Role: estate.Owner, MovedInOn: "2020-02-01",
			Person: &estate.PersonInput{Name: fmt.Sprintf("业主%03d", i), Phone: fmt.Sprintf("1380013%04d", i), IDType: "resident_id", IDLast4: fmt.Sprintf("%04d", i)}})
		if err != nil {
			b.Fatal(err)
		}
		c, err := e.reg.Apply(e.clerk, cards.ApplyInput{Unit: code, PersonID: o.PersonID})
		if err != nil {
			b.Fatal(err)
		}
		rig.sim.Remove()
		rig.sim.Place(pn532sim.NewCard([]byte{0x04, 0x4C, byte(i >> 8), byte(i)}))
		if c, err = e.reg.Issue(e.clerk, c.ID); err != nil {
			b.Fatal(err)
		}
		if c.State != "active" || c.UID == nil || !lostHasRight(c, "gate") {
			b.Fatalf("issued %+v", c)
		}
		out = append(out, c)
	}
	return out
}

func lostHasRight(c cards.Record, zone string) bool {
	for _, r := range c.Rights {
		if r.Zone == zone {
			return true
		}
	}
	return false
}

// floor times rounds of one publish to the gate's topic, answered by each
// of the N bare clients with an acknowledgement on its own topic, until
// all have reached the publisher.
func (e *lostEstate) floor(b *testing.B, c cards.Record, rounds int) []time.Duration {
	n := len(e.devs)
	now := time.Now().Unix()
	payload, err := proto.Encode(&proto.Change{V: proto.Version, Zone: "gate", Seq: 1, Ops: []proto.Op{{Op: "put",
		Entry: proto.Entry{Card: *c.UID, No: uint64(c.Number), From: now - 3600, Until: now + 2*365*86400, Sched: "always", Blocked: true}}}})
	if err != nil {
		b.Fatal(err)
	}
	ack, _ := proto.Encode(&proto.Ack{V: proto.Version, Zone: "gate", Seq: 1})
	var acks atomic.Int64
	done := make(chan struct{}, 1)
	server, err := lostDial(e.url, "floor.server", fleet.ServerUser, serverSecret)
	if err != nil {
		b.Fatal(err)
	}
	defer server.Disconnect(0)
	server.Subscribe(e.topics.Prefix()+"dev/+/ack", 1, func(_ mqtt.Client, _ mqtt.Message) {
		if acks.Add(1) == int64(n) {
			done <- struct{}{}
		}
	}).Wait()
	clients := make([]mqtt.Client, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, id := range e.devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := lostDial(e.url, id, id, e.secrets[id])
			if err != nil {
				errs[i] = err
				return
			}
			clients[i] = c
			t := c.Subscribe(e.topics.Zone("gate"), 1, func(c mqtt.Client, _ mqtt.Message) {
				c.Publish(e.topics.Device(id, proto.KindAck), 1, false, ack)
			})
			t.Wait()
			errs[i] = t.Error()
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Disconnect(0)
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	var out []time.Duration
	for i := 0; i < rounds; i++ {
		acks.Store(0)
		start := time.Now()
		server.Publish(e.topics.Zone("gate"), 1, false, payload).Wait()
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatalf("floor round %d: %d of %d acknowledgements", i, acks.Load(), n)
		}
		out = append(out, time.Since(start))
	}
	return out
}

func lostDial(url, clientID, user, pass string) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetOrderMatters(false).SetConnectTimeout(30 * time.Second)
	c := mqtt.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(30*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("connect %s: %v", clientID, t.Error())
	}
	return c, nil
}

func (e *lostEstate) gateSeq(b *testing.B) uint64 {
	var seq uint64
	if err := e.db.Get(context.Background(), &seq, "SELECT seq FROM zones WHERE id = ?", e.zoneID); err != nil {
		b.Fatal(err)
	}
	return seq
}

func (e *lostEstate) waitAcked(b *testing.B, seq uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A round this slow is a fault, not noise: say who is behind.
	slow := time.AfterFunc(time.Second, func() {
		var behind []string
		for _, r := range e.readers {
			if st := r.Status(); st.Applied["gate"] < seq {
				behind = append(behind, fmt.Sprintf("%s(applied %d online %v)", r.ID(), st.Applied["gate"], st.Online))
			}
		}
		st := e.fl.Stats()
		b.Logf("gate %d still unacknowledged after 1 s: %d readers have not applied it %v; fleet: dropped %d rejected %d published %d",
			seq, len(behind), behind[:min(len(behind), 10)], st.Dropped.Load(), st.Rejected.Load(), st.Published.Load())
	})
	defer slow.Stop()
	if err := e.fl.WaitAcknowledged(ctx, "gate", seq); err != nil {
		b.Fatalf("waiting for every reader to acknowledge gate %d: %v", seq, err)
	}
}

// checkChange checks that the gate's latest change is seq and puts card
// with blocked as given; it returns seq.
func (e *lostEstate) checkChange(b *testing.B, seq uint64, card string, blocked bool) uint64 {
	if cur := e.gateSeq(b); cur != seq {
		b.Fatalf("the gate is at sequence %d after the loss, want %d", cur, seq)
	}
	var raw string
	if err := e.db.Get(context.Background(), &raw, "SELECT ops FROM wl_changes WHERE zone_id = ? AND seq = ?", e.zoneID, seq); err != nil {
		b.Fatal(err)
	}
	var ops []proto.Op
	if err := json.Unmarshal([]byte(raw), &ops); err != nil || len(ops) != 1 || ops[0].Op != "put" || ops[0].Card != card || ops[0].Blocked != blocked {
		b.Fatalf("gate change %d is %s (%v), want %s blocked=%v", seq, raw, err, card, blocked)
	}
	return seq
}

// checkReaders checks that every reader holds every card, blocked or not.
func (e *lostEstate) checkReaders(b *testing.B, readers []*reader.Reader, issued []cards.Record, blocked bool) {
	for _, r := range readers {
		for _, c := range issued {
			if en, ok := r.Entry("gate", *c.UID); !ok || en.Blocked != blocked || en.No != uint64(c.Number) {
				b.Fatalf("%s holds %s as %+v (%v), want blocked=%v", r.ID(), *c.UID, en, ok, blocked)
			}
		}
	}
}

// checkTaps presents every card at each sampled reader: all are denied
// as blocked.
func (e *lostEstate) checkTaps(b *testing.B, sample []*reader.Reader, issued []cards.Record) {
	for _, r := range sample {
		for _, c := range issued {
			if d := r.Tap(*c.UID); d.Granted || d.Reason != "blocked" {
				b.Fatalf("%s: lost card %s: %+v", r.ID(), *c.UID, d)
			}
		}
	}
}

// lostSampleOf picks k readers spread over the fleet.
func lostSampleOf(rs []*reader.Reader, k int) []*reader.Reader {
	k = min(k, len(rs))
	out := make([]*reader.Reader, 0, k)
	for i := 0; i < k; i++ {
		out = append(out, rs[i*len(rs)/k])
	}
	return out
}

// settle waits until the outbox is sent and the sampled readers' events
// (from taps) are stored, so that nothing queued before a measured pass
// runs into it.
func (e *lostEstate) settle(b *testing.B, sample []*reader.Reader) {
	e.waitUntil(b, "the outbox sent and the taps' events stored", func() bool {
		var unsent int
		if err := e.db.Get(context.Background(), &unsent, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL"); err != nil || unsent != 0 {
			return false
		}
		for _, r := range sample {
			if r.Pending() != 0 {
				return false
			}
		}
		return true
	})
}

func (e *lostEstate) waitUntil(b *testing.B, what string, cond func() bool) {
	for deadline := time.Now().Add(5 * time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
	}
}

// lostHTTP is a Fiber app on a loopback port with onecard's session guard
// and the desk's card action for a loss, and the clerk's session.
type lostHTTP struct {
	url    string
	client *http.Client
	cookie *http.Cookie
	csrf   string
}

func (e *lostEstate) startHTTP(b *testing.B) *lostHTTP {
	app := fiber.New(fiber.Config{ErrorHandler: web.ErrorHandler, DisableStartupMessage: true})
	app.Use(web.Observe(web.NewMetrics(prometheus.NewRegistry()), quiet))
	guard := &web.Guard{Auth: e.as, Reg: &web.Registry{}}
	g := guard.Screens(app, "")
	// As desk.cardAction does for "lost".
	g.Post("/cards/:id/lost", web.DirectoryWriters, func(c *fiber.Ctx) error {
		id, err := strconv.ParseInt(c.Params("id"), 10, 64)
		if err != nil || id <= 0 {
			return fiber.ErrBadRequest
		}
		card, err := e.reg.ReportLost(c.UserContext(), id, c.FormValue("note"))
		if err != nil {
			return err
		}
		return c.Redirect(fmt.Sprintf("/cards/%d?done=lost", card.ID), fiber.StatusSeeOther)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go app.Listener(ln)
	b.Cleanup(func() { app.Shutdown() })
	s, err := e.as.Login(context.Background(), "clerk1", "clerk1-password-1", "127.0.0.1", "bench")
	if err != nil {
		b.Fatal(err)
	}
	h := &lostHTTP{url: "http://" + ln.Addr().String(), csrf: s.Actor.CSRF,
		cookie: &http.Cookie{Name: web.SessionCookie, Value: s.Token},
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	// The clerk's browser has its connection open already.
	res, err := h.client.Get(h.url + "/")
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return h
}

// reportLost posts the desk's form and returns where it redirects.
func (h *lostHTTP) reportLost(b *testing.B, id int64) string {
	form := url.Values{"note": {"丢失"}}
	req, err := http.NewRequest("POST", fmt.Sprintf("%s/cards/%d/lost", h.url, id), strings.NewReader(form.Encode()))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(web.CSRFHeader, h.csrf)
	req.AddCookie(h.cookie)
	res, err := h.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusSeeOther {
		b.Fatalf("POST /cards/%d/lost: %d %s %v", id, res.StatusCode, body, err)
	}
	return res.Header.Get("Location")
}
