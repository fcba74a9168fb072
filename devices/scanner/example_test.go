package scanner_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"onecard/devices"
	"onecard/devices/scanner"
)

// The desk's scanner kept connected: each session makes a driver on the
// fresh port and hands the codes on until the port fails, when
// devices.Port opens it again. A rejected line is logged and skipped.
func Example() {
	cfg := devices.SerialConfig{Path: "/dev/ttyACM0", Baud: 9600}
	p := devices.NewPort("desk scanner", func() (io.ReadWriteCloser, error) {
		return devices.OpenSerial(cfg)
	}, slog.Default())
	codes := make(chan scanner.Scan, 64) // read by the mail room's desk screen

	ctx := context.Background() // the server's lifetime
	p.Run(ctx, func(ctx context.Context, rw io.ReadWriter) error {
		sc := scanner.New(rw, nil)
		defer sc.Close()
		for {
			s, err := sc.Next(ctx)
			switch {
			case errors.Is(err, scanner.ErrRejected):
				slog.Warn("scanner line skipped", "err", err)
				continue
			case err != nil:
				return err
			}
			codes <- s
		}
	})
}

// Lines from a scanner on a net.Pipe: the noise between two codes is
// skipped, and a tracking number typed in full width comes out in its
// normal form.
func ExampleScanner_Next() {
	host, dev := net.Pipe()
	sc := scanner.New(host, nil)
	defer sc.Close()
	go io.WriteString(dev, "SF1234567890123\r\n\xff\x00\r\nｓｆ１２３４５６７８９０１２３\r\n")

	ctx := context.Background()
	for range 3 {
		s, err := sc.Next(ctx)
		if err != nil {
			fmt.Println(err)
			continue
		}
		code := scanner.Normalize(s.Code)
		fmt.Println(code, scanner.ValidTracking(code))
	}
	// Output:
	// SF1234567890123 <nil>
	// scanner: line rejected: not UTF-8 at byte 0: "\xff\x00" (2 bytes)
	// SF1234567890123 <nil>
}

func ExampleValidTracking() {
	for _, typed := range []string{" ｙｔ１２３４５６７８９０ ", "773–1234–5678", "SF 1234 5678", "YT12"} {
		code := scanner.Normalize(typed)
		if err := scanner.ValidTracking(code); err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(code)
	}
	// Output:
	// YT1234567890
	// 773-1234-5678
	// scanner: invalid tracking number "SF 1234 5678": ' ' at character 3: only letters, digits and dashes
	// scanner: invalid tracking number "YT12": too short (4 characters, at least 6)
}
