package reader_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"onecard/firmware-sim/reader"
	"onecard/fleet/proto"
)

const (
	site = "s1"
	wait = 5 * time.Second
)

var topics = proto.Topics{Site: site}

// startBroker runs a mochi broker that lets everyone in, on a free port.
func startBroker(t testing.TB) string {
	t.Helper()
	_, url := startBrokerAt(t, "127.0.0.1:0")
	return url
}

// startBrokerAt runs a mochi broker that lets everyone in on addr.
func startBrokerAt(t testing.TB, addr string) (*mochi.Server, string) {
	t.Helper()
	s := mochi.New(&mochi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := s.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBroker(t, s) })
	return s, "tcp://" + l.Address()
}

// closeBroker closes a mochi broker once its clients are gone. Close can
// deadlock when a client leaves at the same moment (Clients.GetByListener
// takes its read lock twice: mochi-mqtt/server#488), so it is given a
// while and then abandoned rather than hanging the test.
func closeBroker(t testing.TB, s *mochi.Server) {
	settled := func() bool {
		for _, cl := range s.Clients.GetAll() {
			if !cl.Closed() || cl.Properties.Clean {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(wait); !settled() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(wait):
		t.Log("mochi's Close is stuck (mochi-mqtt/server#488): abandoned")
	}
}

// msg is a message the test server received.
type msg struct {
	topic    string
	device   string
	payload  []byte
	retained bool
}

// server plays onecard's side: it sees what devices publish and sends them
// what the fleet service would.
type server struct {
	t     testing.TB
	c     mqtt.Client
	kinds map[string]chan msg
	held  map[string][]msg // other devices' messages, seen while waiting for one
}

var clientN atomic.Int64

// newServer connects a test client subscribed to every device's state,
// ack, sync and evt topics.
func newServer(t testing.TB, broker string) *server {
	t.Helper()
	s := &server{t: t, kinds: map[string]chan msg{}, held: map[string][]msg{}}
	for _, k := range []string{proto.KindState, proto.KindAck, proto.KindSync, proto.KindEvt} {
		s.kinds[k] = make(chan msg, 10000)
	}
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("server-%d", clientN.Add(1))).
		SetProtocolVersion(4).SetOrderMatters(true).SetAutoReconnect(false)
	s.c = mqtt.NewClient(o)
	if tok := s.c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("server connect: %v", tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(0) })
	filters := map[string]byte{}
	for k := range s.kinds {
		filters[topics.Device("+", k)] = 1
	}
	tok := s.c.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) {
		tp, ok := topics.Parse(m.Topic())
		if !ok {
			return
		}
		s.kinds[tp.Kind] <- msg{m.Topic(), tp.Device, m.Payload(), m.Retained()}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("server subscribe: %v", tok.Error())
	}
	return s
}

// send publishes a payload (a proto.Payload, encoded, or raw bytes).
func (s *server) send(topic string, p any, retained bool) {
	s.t.Helper()
	var b []byte
	switch p := p.(type) {
	case []byte:
		b = p
	case string:
		b = []byte(p)
	case proto.Payload:
		var err error
		if b, err = proto.Encode(p); err != nil {
			s.t.Fatalf("encode %T: %v", p, err)
		}
	}
	if tok := s.c.Publish(topic, 1, retained, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
		s.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// expect waits for a message of a kind from a device that match accepts,
// skipping (dropping) the device's others; other devices' messages are kept
// for later.
func expect[T any, P interface {
	*T
	proto.Payload
}](s *server, kind, device string, match func(T) bool) T {
	s.t.Helper()
	deadline := time.After(wait)
	var skipped []string
	for {
		var m msg
		if i := slices.IndexFunc(s.held[kind], func(m msg) bool { return m.device == device }); i >= 0 {
			m = s.held[kind][i]
			s.held[kind] = slices.Delete(s.held[kind], i, i+1)
		} else {
			select {
			case m = <-s.kinds[kind]:
			case <-deadline:
				s.t.Fatalf("no matching %s from %s; skipped %q", kind, device, skipped)
			}
			if m.device != device {
				s.held[kind] = append(s.held[kind], m)
				continue
			}
		}
		v, err := proto.Decode[T, P](m.payload)
		if err != nil {
			s.t.Fatalf("%s from %s: %v: %s", kind, device, err, m.payload)
		}
		if match == nil || match(v) {
			return v
		}
		skipped = append(skipped, string(m.payload))
	}
}

// quiet checks that no message of a kind comes from a device for a while.
func (s *server) quiet(kind, device string, d time.Duration) {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-s.kinds[kind]:
			if m.device == device {
				s.t.Fatalf("unexpected %s: %s", kind, m.payload)
			}
		case <-deadline:
			return
		}
	}
}

func (s *server) state(device string, match func(proto.State) bool) proto.State {
	s.t.Helper()
	return expect[proto.State](s, proto.KindState, device, match)
}

func (s *server) ack(device, zone string, seq uint64) {
	s.t.Helper()
	expect[proto.Ack](s, proto.KindAck, device, func(a proto.Ack) bool { return a.Zone == zone && a.Seq == seq })
}

// acks waits for acknowledgements of a device reaching each zone's
// sequence, in any order: they are cumulative and sent once per burst of
// messages handled, so one may cover several changes.
func (s *server) acks(device string, want map[string]uint64) {
	s.t.Helper()
	left := maps.Clone(want)
	for len(left) > 0 {
		expect[proto.Ack](s, proto.KindAck, device, func(a proto.Ack) bool {
			if seq, ok := left[a.Zone]; ok && a.Seq >= seq {
				delete(left, a.Zone)
				return true
			}
			return false
		})
	}
}

// states waits for states of a device matching each of preds, in any
// order: the broker forwards the messages of two connections (an offline
// state or a will, and the next birth) in no guaranteed order.
func (s *server) states(device string, preds ...func(proto.State) bool) {
	s.t.Helper()
	left := slices.Clone(preds)
	for len(left) > 0 {
		expect[proto.State](s, proto.KindState, device, func(st proto.State) bool {
			for i, p := range left {
				if p(st) {
					left = slices.Delete(left, i, i+1)
					return true
				}
			}
			return false
		})
	}
}

func born(session uint64) func(proto.State) bool {
	return func(st proto.State) bool { return st.State == "online" && st.Session == session }
}

func died(session uint64) func(proto.State) bool {
	return func(st proto.State) bool { return st.State == "offline" && st.Session == session }
}

// retained reads the retained message of a topic with a fresh client.
func retained(t *testing.T, broker, topic string) msg {
	t.Helper()
	ch := make(chan msg, 1)
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("peek-%d", clientN.Add(1))).SetProtocolVersion(4)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("peek connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case ch <- msg{m.Topic(), "", m.Payload(), m.Retained()}:
		default:
		}
	})
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		t.Fatalf("nothing retained on %s", topic)
	}
	return msg{}
}

// clock is a settable Options.Clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func testLog(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// bornGate starts a broker, the server's side and gate-1, a reader of
// zone gate, and waits for gate-1's first birth.
func bornGate(t *testing.T) (*reader.Reader, *server) {
	t.Helper()
	broker := startBroker(t)
	srv := newServer(t, broker)
	r, _ := start(t, reader.Options{Broker: broker, ID: "gate-1", Zone: "gate"})
	srv.state("gate-1", born(1))
	return r, srv
}

// start makes and runs a reader; stop ends Run and waits for it (also at
// the end of the test).
func start(t *testing.T, o reader.Options) (r *reader.Reader, stop func()) {
	t.Helper()
	if o.Site == "" {
		o.Site = site
	}
	if o.Log == nil {
		o.Log = testLog(t)
	}
	r, err := reader.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(wait):
				t.Error("Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func put(card string, from, until int64, sched string) proto.Op {
	return proto.Op{Op: "put", Entry: proto.Entry{Card: card, No: 1000001, From: from, Until: until, Sched: sched}}
}

func del(card string) proto.Op { return proto.Op{Op: "del", Entry: proto.Entry{Card: card}} }

func change(zone string, seq uint64, ops ...proto.Op) *proto.Change {
	return &proto.Change{V: 1, Zone: zone, Seq: seq, Ops: ops}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// jamProxy forwards TCP connections to a broker. jam stops it reading what
// the connections open at that moment send (the broker still reaches the
// client), as a link whose way up is jammed; later connections are not.
type jamProxy struct {
	url string

	mu    sync.Mutex
	conns []*jamConn
}

type jamConn struct {
	jammed atomic.Bool
	closed chan struct{}
	once   sync.Once
	c, u   net.Conn
}

func (jc *jamConn) close() {
	jc.once.Do(func() {
		close(jc.closed)
		jc.c.Close()
		jc.u.Close()
	})
}

func newJamProxy(t *testing.T, broker string) *jamProxy {
	t.Helper()
	target := strings.TrimPrefix(broker, "tcp://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &jamProxy{url: "tcp://" + ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			jc := &jamConn{closed: make(chan struct{}), c: c, u: u}
			p.mu.Lock()
			p.conns = append(p.conns, jc)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(c, u); jc.close() }()
			go func() {
				defer jc.close()
				buf := make([]byte, 4096)
				for {
					if jc.jammed.Load() {
						<-jc.closed
						return
					}
					n, err := c.Read(buf)
					if n > 0 {
						if _, err := u.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, jc := range p.conns {
			jc.close()
		}
	})
	return p
}

// jam stops forwarding what the open connections send.
func (p *jamProxy) jam() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, jc := range p.conns {
		jc.jammed.Store(true)
	}
}
