package broker_test

import (
	"log"
	"log/slog"

	"onecard/devices/broker"
	"onecard/fleet/proto"
)

// Embedding the broker: logins come from onecard's device registry (here a
// fixed table); onecard connects to it like any client, as the server.
func Example() {
	gateHash, _ := broker.HashSecret("device secret printed once")
	serverHash, _ := broker.HashSecret("random per process")
	logins := map[string]struct {
		hash string
		p    proto.Principal
	}{
		"gate-1":         {gateHash, proto.Principal{Role: proto.RoleDevice, ID: "gate-1", Zones: []string{"gate"}}},
		"onecard-server": {serverHash, proto.Principal{Role: proto.RoleServer, ID: "onecard-server"}},
	}
	b, err := broker.New(broker.Options{
		Addr: "127.0.0.1:1883",
		Site: "cuihu",
		Auth: broker.AuthFunc(func(username string, password []byte) (proto.Principal, bool) {
			l, ok := logins[username]
			return l.p, ok && broker.CheckSecret(l.hash, string(password))
		}),
		Log: slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Start(); err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	// When a device is disabled: refuse its login, then
	b.Disconnect("gate-1")
}
