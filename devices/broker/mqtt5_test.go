package broker_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"onecard/fleet/proto"
)

// An MQTT 5 device whose publish is refused gets PUBACK "not authorized"
// (0x87) and stays connected; nothing is delivered. paho.mqtt.golang
// speaks only 3.1.1, so this client is mochi's packet codec over TCP.
func TestMQTT5PublishRefused(t *testing.T) {
	b, _ := startBroker(t, nil)
	srv := login(t, "tcp://"+b.Addr(), "onecard-server", nil)
	srvIn := newInbox()
	subscribe(t, srv, srvIn, topics.Prefix()+"#")

	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	r := bufio.NewReader(conn)
	send := func(pk packets.Packet, encode func(*packets.Packet, *bytes.Buffer) error) {
		t.Helper()
		pk.ProtocolVersion = 5
		var buf bytes.Buffer
		if err := encode(&pk, &buf); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	receive := func(want byte) packets.Packet {
		t.Helper()
		h, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		pk := packets.Packet{ProtocolVersion: 5}
		if err := pk.FixedHeader.Decode(h); err != nil {
			t.Fatal(err)
		}
		n, _, err := packets.DecodeLength(r)
		if err != nil {
			t.Fatal(err)
		}
		pk.FixedHeader.Remaining = n
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatal(err)
		}
		if pk.FixedHeader.Type != want {
			t.Fatalf("packet type %d, want %d", pk.FixedHeader.Type, want)
		}
		switch want {
		case packets.Connack:
			err = pk.ConnackDecode(body)
		case packets.Puback:
			err = pk.PubackDecode(body)
		}
		if err != nil {
			t.Fatal(err)
		}
		return pk
	}

	send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, Connect: packets.ConnectParams{
		ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: "gate-1",
		UsernameFlag: true, Username: []byte("gate-1"), PasswordFlag: true, Password: []byte(secretOf("gate-1")),
	}}, (*packets.Packet).ConnectEncode)
	if ack := receive(packets.Connack); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %#x", ack.ReasonCode)
	}

	publish5 := func(id uint16, topic, payload string) byte {
		send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: id,
			TopicName: topic, Payload: []byte(payload)}, (*packets.Packet).PublishEncode)
		ack := receive(packets.Puback)
		if ack.PacketID != id {
			t.Fatalf("PUBACK for %d, want %d", ack.PacketID, id)
		}
		return ack.ReasonCode
	}
	if code := publish5(1, topics.Device("gate-2", proto.KindEvt), "forged-v5"); code != packets.ErrNotAuthorized.Code {
		t.Errorf("refused publish: PUBACK %#x, want 0x87", code)
	}
	if code := publish5(2, topics.Device("gate-1", proto.KindEvt), "evt-v5"); code != 0 {
		t.Errorf("allowed publish: PUBACK %#x", code)
	}
	until(t, "server", srvIn, topics.Device("gate-1", proto.KindEvt), "evt-v5", "forged-v5")
	mustEqual(t, "PublishesDropped", b.Stats().PublishesDropped, 1)
}
