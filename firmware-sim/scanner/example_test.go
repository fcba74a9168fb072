package scannersim_test

import (
	"context"
	"errors"
	"fmt"
	"net"

	"onecard/devices/scanner"
	scannersim "onecard/firmware-sim/scanner"
)

// The driver reading a batch from the simulator over net.Pipe, with line
// noise in the middle.
func Example() {
	host, dev := net.Pipe()
	defer host.Close()
	sim := scannersim.New(scannersim.Options{Baud: -1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sim.Serve(ctx, dev) }()

	sc := scanner.New(host, nil)
	defer sc.Close()
	sim.Scan("SF1234567890123", "1Z999AA10123456784")
	sim.InjectGarbage([]byte{0xFF, 0x00, '\r', '\n'})
	sim.Scan("773-1234-5678")
	for range 4 {
		s, err := sc.Next(ctx)
		if errors.Is(err, scanner.ErrRejected) {
			fmt.Println("skipped:", err)
			continue
		}
		fmt.Println(s.Code)
	}

	cancel()
	<-done
	// Output:
	// SF1234567890123
	// 1Z999AA10123456784
	// skipped: scanner: line rejected: not UTF-8 at byte 0: "\xff\x00" (2 bytes)
	// 773-1234-5678
}
