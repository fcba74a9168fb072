package broker

import (
	"log/slog"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"onecard/fleet/proto"
)

// A QoS 1 message queued for a device that stays offline for more than a
// day is still there, and so is the device's session. mochi's clock
// cannot be moved, so this asks mochi's own expiry rules about a moment
// 25 hours from now.
func TestNothingExpiresInADay(t *testing.T) {
	dev := proto.Principal{Role: proto.RoleDevice, ID: "gate-1", Zones: []string{"gate"}}
	b, err := New(Options{Addr: "127.0.0.1:0", Site: "cuihu", Log: slog.New(slog.DiscardHandler),
		Auth: AuthFunc(func(u string, p []byte) (proto.Principal, bool) { return dev, u == "gate-1" && string(p) == "pw" })})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("gate-1").
		SetUsername("gate-1").SetPassword("pw").SetCleanSession(false).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	cmd := b.topics.Device("gate-1", proto.KindCmd)
	if tok := c.Subscribe(cmd, 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	c.Disconnect(100)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if cl, ok := b.srv.Clients.Get("gate-1"); ok && cl.StopTime() != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gate-1 still connected")
		}
	}

	err = b.srv.InjectPacket(b.inline, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName: cmd, Payload: []byte("queued"), PacketID: 1})
	if err != nil {
		t.Fatal(err)
	}
	cl, ok := b.srv.Clients.Get("gate-1")
	if !ok || cl.State.Inflight.Len() != 1 {
		t.Fatalf("session %v, queued %d", ok, cl.State.Inflight.Len())
	}

	caps := b.srv.Options.Capabilities
	later := time.Now().Add(25 * time.Hour).Unix()
	if gone := cl.ClearExpiredInflights(later, caps.MaximumMessageExpiryInterval); len(gone) != 0 {
		t.Errorf("queued message expired after 25 h (maximum message expiry %d s)", caps.MaximumMessageExpiryInterval)
	}
	// The rule of mochi's clearExpiredClients for MQTT 3.1.1 sessions.
	if cl.StopTime()+int64(caps.MaximumSessionExpiryInterval) < later {
		t.Errorf("session expires within 25 h (%d s)", caps.MaximumSessionExpiryInterval)
	}
	// Retained messages (device states, the site configuration) are only
	// removed by the broker when a maximum message expiry is set.
	if caps.MaximumMessageExpiryInterval != 0 {
		t.Errorf("retained messages expire after %d s", caps.MaximumMessageExpiryInterval)
	}
	// With mochi's default (24 h), the same question loses the message.
	if gone := cl.ClearExpiredInflights(later, 24*60*60); len(gone) != 1 {
		t.Errorf("mochi's default kept the message: the test asks the wrong question")
	}
}
