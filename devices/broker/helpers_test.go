package broker_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"onecard/devices/broker"
	"onecard/fleet/proto"
)

const site = "cuihu"

var topics = proto.Topics{Site: site}

// The logins of every test: two devices in different zones, onecard
// itself and the monitor.
var principals = map[string]proto.Principal{
	"gate-1":         {Role: proto.RoleDevice, ID: "gate-1", Zones: []string{"gate"}},
	"gate-2":         {Role: proto.RoleDevice, ID: "gate-2", Zones: []string{"carpark"}},
	"onecard-server": {Role: proto.RoleServer, ID: "onecard-server"},
	"monitor":        {Role: proto.RoleMonitor, ID: "monitor"},
}

func secretOf(user string) string { return "secret-of-" + user }

// users hashes every login's secret, in a stable order.
func users(t *testing.T) []broker.MosquittoUser {
	t.Helper()
	var out []broker.MosquittoUser
	for _, u := range []string{"gate-1", "gate-2", "onecard-server", "monitor"} {
		h, err := broker.HashSecret(secretOf(u))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, broker.MosquittoUser{Username: u, Hash: h, Principal: principals[u]})
	}
	return out
}

// authOf checks logins against users' hashes, as the fleet service does
// against its database.
func authOf(us []broker.MosquittoUser) broker.Authenticator {
	return broker.AuthFunc(func(username string, password []byte) (proto.Principal, bool) {
		for _, u := range us {
			if u.Username == username {
				return u.Principal, broker.CheckSecret(u.Hash, string(password))
			}
		}
		return proto.Principal{}, false
	})
}

// logBuf collects the broker's log, shown when a test fails.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLogger(t *testing.T) (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", lb)
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// startBroker starts an embedded broker on a free port, closed at cleanup.
func startBroker(t *testing.T, tweak func(*broker.Options)) (*broker.Broker, *logBuf) {
	t.Helper()
	log, lb := testLogger(t)
	o := broker.Options{Addr: "127.0.0.1:0", Site: site, Auth: authOf(users(t)), Log: log}
	if tweak != nil {
		tweak(&o)
	}
	b, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, lb
}

const wait = 5 * time.Second

// dial connects a paho client (MQTT 3.1.1, no automatic reconnection),
// disconnected at cleanup.
func dial(t *testing.T, url, clientID, user, password string, clean bool, tweak func(*paho.ClientOptions)) (paho.Client, *paho.ConnectToken, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(password).
		SetCleanSession(clean).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait).
		SetKeepAlive(30 * time.Second).SetProtocolVersion(4)
	if tweak != nil {
		tweak(o)
	}
	c := paho.NewClient(o)
	tok := c.Connect().(*paho.ConnectToken)
	if !tok.WaitTimeout(wait) {
		return nil, nil, errors.New("connect: no answer")
	}
	if err := tok.Error(); err != nil {
		return nil, tok, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, tok, nil
}

// login connects as user (client id = username) or fails the test.
func login(t *testing.T, url, user string, tweak func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	c, _, err := dial(t, url, user, user, secretOf(user), true, tweak)
	if err != nil {
		t.Fatalf("%s: connect: %v", user, err)
	}
	return c
}

type msg struct {
	topic, payload string
	retained       bool
}

func (m msg) String() string { return m.topic + " " + m.payload }

// inbox receives a client's messages in order (paho's default).
type inbox chan msg

func newInbox() inbox { return make(inbox, 1000) }

func (in inbox) handle(_ paho.Client, m paho.Message) {
	select {
	case in <- msg{m.Topic(), string(m.Payload()), m.Retained()}:
	default: // a test that floods its inbox fails on what it expects
	}
}

// subscribe subscribes at QoS 1 and returns the broker's answer per
// filter. A filter refused with 0x91 (mochi: packet id in use, see
// hook.OnSubscribed) is subscribed again, as a client must.
func subscribe(t *testing.T, c paho.Client, in inbox, filters ...string) map[string]byte {
	t.Helper()
	out := map[string]byte{}
	for try := 0; len(filters) > 0; try++ {
		f := map[string]byte{}
		for _, s := range filters {
			f[s] = 1
		}
		tok := c.SubscribeMultiple(f, in.handle).(*paho.SubscribeToken)
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("subscribe %v: %v", filters, tok.Error())
		}
		filters = filters[:0]
		for s, code := range tok.Result() {
			out[s] = code
			if code == 0x91 && try < 10 {
				filters = append(filters, s)
			}
		}
	}
	return out
}

func publish(t *testing.T, c paho.Client, topic, payload string, retained bool) {
	t.Helper()
	tok := c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// until reads in until topic arrives (with payload, if not empty); it
// fails the test if a message with one of the forbidden topics or
// payloads comes first. Everything read is consumed.
func until(t *testing.T, who string, in inbox, topic, payload string, forbidden ...string) msg {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case m := <-in:
			for _, f := range forbidden {
				if m.topic == f || m.payload == f {
					t.Errorf("%s received %s", who, m)
				}
			}
			if m.topic == topic && (payload == "" || m.payload == payload) {
				return m
			}
		case <-deadline:
			t.Fatalf("%s: no %s %s", who, topic, payload)
			return msg{}
		}
	}
}

// proxy forwards TCP connections to target; cut drops them all, as a
// network failure would, without MQTT DISCONNECT.
func proxy(t *testing.T, target string) (addr string, cut func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	cut = func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
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
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); cut() })
	return ln.Addr().String(), cut
}

// checkRules runs the access rules every broker must enforce, judged by
// what the other side receives. url is the broker's; it must start empty
// of retained messages for the site.
func checkRules(t *testing.T, url string) {
	t.Helper()
	p := topics.Prefix()
	srv, mon := login(t, url, "onecard-server", nil), login(t, url, "monitor", nil)
	srvIn, monIn := newInbox(), newInbox()
	subscribe(t, srv, srvIn, p+"#")
	subscribe(t, mon, monIn, p+"#")
	g1, g2 := login(t, url, "gate-1", nil), login(t, url, "gate-2", nil)
	g1In, g2In := newInbox(), newInbox()
	subscribe(t, g1, g1In, topics.DeviceSubscriptions("gate-1", []string{"gate"})...)
	subscribe(t, g2, g2In, topics.DeviceSubscriptions("gate-2", []string{"carpark"})...)

	t.Run("device state is retained and seen by server and monitor", func(t *testing.T) {
		state := topics.Device("gate-1", proto.KindState)
		publish(t, g1, state, "online-1", true)
		until(t, "server", srvIn, state, "online-1")
		until(t, "monitor", monIn, state, "online-1")
		// paho hands a message to every matching subscription: the live
		// copy may still be on its way to the server and land here too.
		later := newInbox()
		subscribe(t, srv, later, state)
		for m := until(t, "server, subscribing later", later, state, "online-1"); !m.retained; {
			m = until(t, "server, subscribing later (retained)", later, state, "online-1")
		}
	})

	t.Run("device cannot publish to other topics", func(t *testing.T) {
		forged := []string{
			topics.Device("gate-2", proto.KindEvt), topics.Device("gate-2", proto.KindState),
			topics.Device("gate-1", proto.KindCmd), topics.Device("gate-1", proto.KindEvtAck),
			topics.Zone("gate"), topics.Config(), "onecard/v1/other/dev/gate-1/evt",
		}
		for _, f := range forged {
			publish(t, g1, f, "forged-by-gate-1", false)
		}
		// The broker handles a client's packets in order, so its own evt
		// reaches the server after anything published before it.
		evt := topics.Device("gate-1", proto.KindEvt)
		publish(t, g1, evt, "evt-1", false)
		until(t, "server", srvIn, evt, "evt-1", "forged-by-gate-1")
		until(t, "monitor", monIn, evt, "evt-1", "forged-by-gate-1")
		// gate-2 never got the forged cmd-like publishes either: its own
		// cmd from the server comes first.
		publish(t, srv, topics.Device("gate-2", proto.KindCmd), "cmd-to-gate-2", false)
		until(t, "gate-2", g2In, topics.Device("gate-2", proto.KindCmd), "cmd-to-gate-2", "forged-by-gate-1")
	})

	t.Run("device receives only its own topics and its zones", func(t *testing.T) {
		subscribe(t, g1, g1In, topics.Device("gate-2", proto.KindCmd), p+"dev/gate-1/#", p+"zone/+/wl", p+"#")
		publish(t, srv, topics.Device("gate-2", proto.KindCmd), "cmd-for-gate-2", false)
		publish(t, srv, topics.Zone("carpark"), "wl-carpark", false)
		publish(t, srv, topics.Device("gate-2", proto.KindState), "not-for-gate-1", false)
		publish(t, srv, topics.Zone("gate"), "wl-gate", false)
		publish(t, srv, topics.Device("gate-1", proto.KindCmd), "cmd-for-gate-1", false)
		until(t, "gate-1", g1In, topics.Zone("gate"), "wl-gate", "cmd-for-gate-2", "wl-carpark", "not-for-gate-1")
		until(t, "gate-1", g1In, topics.Device("gate-1", proto.KindCmd), "cmd-for-gate-1", "cmd-for-gate-2", "wl-carpark", "not-for-gate-1")
		until(t, "gate-2", g2In, topics.Zone("carpark"), "wl-carpark", "wl-gate")
	})

	t.Run("monitor reads everything and writes nothing", func(t *testing.T) {
		cmd := topics.Device("gate-1", proto.KindCmd)
		publish(t, mon, cmd, "forged-by-monitor", false)
		publish(t, mon, topics.Config(), "forged-by-monitor", true)
		// The monitor's next packet is handled after its publishes have
		// gone wherever they were going.
		subscribe(t, mon, newInbox(), p+"config")
		publish(t, srv, cmd, "cmd-after-monitor", false)
		until(t, "gate-1", g1In, cmd, "cmd-after-monitor", "forged-by-monitor")
		until(t, "monitor", monIn, cmd, "cmd-after-monitor", "forged-by-monitor")
	})

	t.Run("logins", func(t *testing.T) {
		if _, _, err := dial(t, url, "gate-2", "gate-2", "wrong", true, nil); err == nil {
			t.Error("wrong password accepted")
		}
		if _, _, err := dial(t, url, "nobody", "nobody", "x", true, nil); err == nil {
			t.Error("unknown user accepted")
		}
		if _, _, err := dial(t, url, "anon", "", "", true, nil); err == nil {
			t.Error("anonymous client accepted")
		}
	})
}

func mustEqual[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// checkQueued: QoS 1 messages published while a device with a persistent
// session is offline (its connection broken) are delivered when it
// reconnects, without it subscribing again. whileOffline runs before it
// does. addr is the broker's host:port.
func checkQueued(t *testing.T, addr string, whileOffline func()) {
	t.Helper()
	url := "tcp://" + addr
	srv := login(t, url, "onecard-server", nil)
	state, cmd := topics.Device("gate-1", proto.KindState), topics.Device("gate-1", proto.KindCmd)
	srvIn := newInbox()
	subscribe(t, srv, srvIn, state)
	paddr, cut := proxy(t, addr)
	g1, _, err := dial(t, "tcp://"+paddr, "gate-1", "gate-1", secretOf("gate-1"), false, func(o *paho.ClientOptions) {
		o.SetWill(state, "offline-queued", 1, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	subscribe(t, g1, newInbox(), topics.DeviceSubscriptions("gate-1", []string{"gate"})...)
	cut()
	until(t, "server", srvIn, state, "offline-queued") // the broker knows

	publish(t, srv, cmd, "while-offline-1", false)
	publish(t, srv, topics.Zone("gate"), "wl-while-offline", false)
	publish(t, srv, cmd, "while-offline-2", false)
	// Once the server receives its own next message, the broker has
	// handled the three before: they are queued.
	barrier := topics.Device("gate-2", proto.KindEvt)
	subscribe(t, srv, srvIn, barrier)
	publish(t, srv, barrier, "barrier", false)
	until(t, "server", srvIn, barrier, "barrier")
	if whileOffline != nil {
		whileOffline()
	}

	in := newInbox()
	_, tok, err := dial(t, url, "gate-1", "gate-1", secretOf("gate-1"), false, func(o *paho.ClientOptions) {
		o.SetDefaultPublishHandler(in.handle)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !tok.SessionPresent() {
		t.Error("session not present")
	}
	got := map[string]bool{}
	for range 3 {
		select {
		case m := <-in:
			got[m.payload] = true
		case <-time.After(wait):
			t.Fatalf("queued messages: got %v", got)
		}
	}
	for _, p := range []string{"while-offline-1", "while-offline-2", "wl-while-offline"} {
		if !got[p] {
			t.Errorf("%s not delivered (got %v)", p, got)
		}
	}
}

// checkWill: a device's will (its retained offline state) is published
// when its connection breaks without DISCONNECT, and not after a clean
// DISCONNECT. addr is the broker's host:port.
func checkWill(t *testing.T, addr string) {
	t.Helper()
	url := "tcp://" + addr
	state := topics.Device("gate-1", proto.KindState)
	srv := login(t, url, "onecard-server", nil)
	srvIn := newInbox()
	subscribe(t, srv, srvIn, state, topics.Device("gate-2", proto.KindState))

	paddr, cut := proxy(t, addr)
	g1, _, err := dial(t, "tcp://"+paddr, "gate-1", "gate-1", secretOf("gate-1"), false, func(o *paho.ClientOptions) {
		o.SetWill(state, `{"v":1,"state":"offline","session":7}`, 1, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, g1, state, `{"v":1,"state":"online","session":7,"clock":"ok"}`, true)
	until(t, "server", srvIn, state, `{"v":1,"state":"online","session":7,"clock":"ok"}`)

	cut()
	until(t, "server", srvIn, state, `{"v":1,"state":"offline","session":7}`)
	later := newInbox()
	subscribe(t, login(t, url, "monitor", nil), later, state)
	if m := until(t, "monitor", later, state, ""); !m.retained || m.payload != `{"v":1,"state":"offline","session":7}` {
		t.Errorf("retained state after the will: %+v", m)
	}

	g2, _, err := dial(t, url, "gate-2", "gate-2", secretOf("gate-2"), true, func(o *paho.ClientOptions) {
		o.SetWill(topics.Device("gate-2", proto.KindState), "will-2", 1, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, g2, topics.Device("gate-2", proto.KindState), "online-2", true)
	until(t, "server", srvIn, topics.Device("gate-2", proto.KindState), "online-2")
	g2.Disconnect(100)
	select {
	case m := <-srvIn:
		t.Errorf("server received %s after a clean disconnect", m)
	case <-time.After(200 * time.Millisecond):
	}
}
