package pn532sim_test

import (
	"bufio"
	"context"
	"fmt"
	"net"

	"onecard/devices/pn532"
	pn532sim "onecard/firmware-sim/pn532"
)

// A card on the antenna, listed by hand-built frames over net.Pipe.
func Example() {
	host, dev := net.Pipe()
	defer host.Close()
	sim := pn532sim.New(pn532sim.Options{})
	sim.Place(pn532sim.NewCard([]byte{0x04, 0xA1, 0xB2, 0xC3}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sim.Serve(ctx, dev) }()

	req, _ := pn532.Encode(pn532.HostToPN532, []byte{0x4A, 0x01, 0x00}) // InListPassiveTarget
	host.Write(req)
	r := bufio.NewReader(host)
	ack, _ := pn532.ReadFrame(r)
	resp, _ := pn532.ReadFrame(r)
	fmt.Println(ack.Kind)
	fmt.Printf("% X\n", resp.Data)

	cancel()
	<-done
	// Output:
	// ACK
	// 4B 01 01 00 04 08 04 04 A1 B2 C3
}
