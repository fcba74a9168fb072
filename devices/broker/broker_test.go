package broker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"onecard/devices/broker"
	"onecard/fleet/proto"
)

func TestRules(t *testing.T) {
	b, _ := startBroker(t, nil)
	checkRules(t, "tcp://"+b.Addr())
	s := b.Stats()
	// 7 forged by gate-1, 2 by the monitor; 4 filters of gate-1.
	mustEqual(t, "PublishesDropped", s.PublishesDropped, 9)
	mustEqual(t, "SubscriptionsRefused", s.SubscriptionsRefused, 4)
	mustEqual(t, "ConnectsRefused", s.ConnectsRefused, 3)
}

func TestLoginRules(t *testing.T) {
	b, _ := startBroker(t, nil)
	url := "tcp://" + b.Addr()
	if _, _, err := dial(t, url, "gate-1", "gate-1", secretOf("gate-1"), true, nil); err != nil {
		t.Fatalf("device with its own client id: %v", err)
	}
	// The right password, but another device's client id: it would take
	// over that device's session.
	if _, _, err := dial(t, url, "gate-2", "gate-1", secretOf("gate-1"), true, nil); err == nil {
		t.Error("device logged in with another client id")
	}
	if _, _, err := dial(t, url, "", "gate-1", secretOf("gate-1"), true, nil); err == nil {
		t.Error("device logged in without client id")
	}
	// A will is a publish at an unknown time: only to the client's topics.
	forgedWill := func(o *paho.ClientOptions) {
		o.SetWill(topics.Device("gate-2", proto.KindState), `{"v":1,"state":"offline","session":9}`, 1, true)
	}
	if _, _, err := dial(t, url, "gate-1", "gate-1", secretOf("gate-1"), true, forgedWill); err == nil {
		t.Error("device connected with a will on another device's state")
	}
	// onecard itself may use any client id (replicas each their own).
	if _, _, err := dial(t, url, "onecard-replica-2", "onecard-server", secretOf("onecard-server"), true, nil); err != nil {
		t.Errorf("server with its own client id: %v", err)
	}
	if _, _, err := dial(t, url, "onecard-server", "onecard-server", "wrong", true, nil); err == nil {
		t.Error("server with a wrong password")
	}
	mustEqual(t, "ConnectsRefused", b.Stats().ConnectsRefused, 4)
}

func TestSubackRefusals(t *testing.T) {
	b, _ := startBroker(t, nil)
	url := "tcp://" + b.Addr()
	p := topics.Prefix()
	g1 := login(t, url, "gate-1", nil)
	got := subscribe(t, g1, newInbox(), topics.Device("gate-1", proto.KindCmd), topics.Device("gate-2", proto.KindCmd),
		p+"dev/gate-1/#", p+"zone/+/wl", topics.Zone("carpark"), topics.Zone("gate"), topics.Config())
	want := map[string]byte{
		topics.Device("gate-1", proto.KindCmd): 1, topics.Device("gate-2", proto.KindCmd): 0x80,
		p + "dev/gate-1/#": 0x80, p + "zone/+/wl": 0x80, topics.Zone("carpark"): 0x80, topics.Zone("gate"): 1, topics.Config(): 1,
	}
	for f, code := range want {
		mustEqual(t, "SUBACK for "+f, got[f], code)
	}
	mon := login(t, url, "monitor", nil)
	got = subscribe(t, mon, newInbox(), p+"#", "#", "onecard/#", "$SYS/#")
	mustEqual(t, "monitor SUBACK for the site", got[p+"#"], 1)
	for _, f := range []string{"#", "onecard/#", "$SYS/#"} {
		mustEqual(t, "monitor SUBACK for "+f, got[f], 0x80)
	}
	mustEqual(t, "SubscriptionsRefused", b.Stats().SubscriptionsRefused, 7)
}

// A device's QoS 1 messages wait for it while it is offline, in its
// persistent session.
func TestPersistentSession(t *testing.T) {
	b, _ := startBroker(t, nil)
	checkQueued(t, b.Addr(), func() {
		eventually(t, "gate-1 offline", func() bool { return b.Stats().Connected == 1 })
		// mochi acknowledges a publish before it queues it for subscribers.
		eventually(t, "3 messages queued", func() bool { return b.Stats().Queued == 3 })
		if s := b.Stats(); s.Sessions != 2 {
			t.Errorf("stats with gate-1 offline: %+v", s)
		}
	})
	eventually(t, "queue emptied", func() bool { return b.Stats().Queued == 0 })
}

// Disconnect drops the connection at once and the session with it: a
// disabled device gets nothing more, even if it comes back.
func TestDisconnect(t *testing.T) {
	b, _ := startBroker(t, nil)
	url := "tcp://" + b.Addr()
	srv := login(t, url, "onecard-server", nil)
	srvIn := newInbox()
	subscribe(t, srv, srvIn, topics.Device("gate-1", proto.KindState))
	state := topics.Device("gate-1", proto.KindState)

	lost := make(chan error, 1)
	g1, _, err := dial(t, url, "gate-1", "gate-1", secretOf("gate-1"), false, func(o *paho.ClientOptions) {
		o.SetWill(state, "offline-1", 1, true)
		o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	})
	if err != nil {
		t.Fatal(err)
	}
	g1In := newInbox()
	subscribe(t, g1, g1In, topics.DeviceSubscriptions("gate-1", []string{"gate"})...)
	publish(t, g1, state, "online-1", true)
	until(t, "server", srvIn, state, "online-1")

	b.Disconnect("gate-1")
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("gate-1 still connected")
	}
	until(t, "server", srvIn, state, "offline-1")
	if s := b.Stats(); s.Kicked != 1 || s.Sessions != 1 {
		t.Errorf("after Disconnect: %+v", s)
	}
	b.Disconnect("gate-1")  // gone already: nothing happens
	b.Disconnect("no-such") // nor here

	publish(t, srv, topics.Device("gate-1", proto.KindCmd), "after-kick", false)
	in := newInbox()
	_, tok, err := dial(t, url, "gate-1", "gate-1", secretOf("gate-1"), false, func(o *paho.ClientOptions) {
		o.SetDefaultPublishHandler(in.handle)
	})
	if err != nil {
		t.Fatal(err)
	}
	if tok.SessionPresent() {
		t.Error("the kicked session survived")
	}
	select {
	case m := <-in:
		t.Errorf("kicked device received %s", m)
	case <-time.After(100 * time.Millisecond):
	}
}

// An offline device's session can be discarded too.
func TestDisconnectOffline(t *testing.T) {
	b, _ := startBroker(t, nil)
	url := "tcp://" + b.Addr()
	g1, _, err := dial(t, url, "gate-1", "gate-1", secretOf("gate-1"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	subscribe(t, g1, newInbox(), topics.Device("gate-1", proto.KindCmd))
	g1.Disconnect(100)
	eventually(t, "gate-1 offline", func() bool { return b.Stats().Connected == 0 })
	mustEqual(t, "sessions", b.Stats().Sessions, 1)
	b.Disconnect("gate-1")
	mustEqual(t, "sessions", b.Stats().Sessions, 0)
}

// The will (retained offline state) is published when a device's
// connection breaks without DISCONNECT.
func TestWill(t *testing.T) {
	b, _ := startBroker(t, nil)
	checkWill(t, b.Addr())
}

// A protocol payload of the largest size passes; a packet past MaxPacket
// ends the connection.
func TestPacketSize(t *testing.T) {
	b, _ := startBroker(t, nil)
	url := "tcp://" + b.Addr()
	srv := login(t, url, "onecard-server", nil)
	srvIn := newInbox()
	evt := topics.Device("gate-1", proto.KindEvt)
	subscribe(t, srv, srvIn, evt)
	lost := make(chan struct{}, 1)
	g1 := login(t, url, "gate-1", func(o *paho.ClientOptions) {
		o.SetConnectionLostHandler(func(paho.Client, error) { lost <- struct{}{} })
	})
	big := strings.Repeat("x", proto.MaxPayload)
	publish(t, g1, evt, big, false)
	until(t, "server", srvIn, evt, big)

	g1.Publish(evt, 1, false, strings.Repeat("y", broker.MaxPacket+1))
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("oversized packet accepted")
	}
}

func TestTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "onecard test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	b, _ := startBroker(t, func(o *broker.Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	})
	c := login(t, "ssl://"+b.Addr(), "gate-1", func(o *paho.ClientOptions) {
		o.SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	})
	publish(t, c, topics.Device("gate-1", proto.KindEvt), "over-tls", false)
}

// Close returns even with a connection that never sent CONNECT.
func TestCloseWithIdleConnection(t *testing.T) {
	log, _ := testLogger(t)
	b, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Site: site, Auth: authOf(nil), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err == nil {
		t.Error("started twice")
	}
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() { b.Close(); b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Close hangs")
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := broker.New(broker.Options{Site: "Bad/Site", Auth: authOf(nil)}); err == nil {
		t.Error("invalid site accepted")
	}
	if _, err := broker.New(broker.Options{Site: site}); err == nil {
		t.Error("no Authenticator accepted")
	}
	b, err := broker.New(broker.Options{Addr: "127.0.0.1:-1", Site: site, Auth: authOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err == nil {
		t.Error("bad address accepted")
	}
	b.Close()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
