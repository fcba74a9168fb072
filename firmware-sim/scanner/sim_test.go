package scannersim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	scannersim "onecard/firmware-sim/scanner"
)

// step bounds every wait, so that a broken simulator fails a test instead
// of hanging it.
const step = 5 * time.Second

// serve runs sim on one end of a net.Pipe and returns the other.
func serve(t *testing.T, sim *scannersim.Sim) net.Conn {
	t.Helper()
	host, dev := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Serve(ctx, dev) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(step):
			t.Error("Serve did not stop")
		}
		host.Close()
		dev.Close()
	})
	return host
}

// read reads exactly n bytes from the simulator.
func read(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(step))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, b)
	}
	return b
}

// Codes leave in order, each with the prefix and the suffix; garbage goes
// as it is, between them.
func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    scannersim.Options
		want string
	}{
		{"default", scannersim.Options{}, "SF1001\r\n\xff\x00SF1002\r\n"},
		{"cr", scannersim.Options{Suffix: "\r"}, "SF1001\r\xff\x00SF1002\r"},
		{"lf aim", scannersim.Options{Suffix: "\n", Prefix: "]C0"}, "]C0SF1001\n\xff\x00]C0SF1002\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Baud = -1
			sim := scannersim.New(tc.o)
			sim.Scan("SF1001")
			sim.InjectGarbage([]byte{0xFF, 0x00})
			sim.Scan("SF1002")
			host := serve(t, sim)
			if got := read(t, host, len(tc.want)); string(got) != tc.want {
				t.Fatalf("sent %q, want %q", got, tc.want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), step)
			defer cancel()
			if err := sim.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if st := sim.State(); st != (scannersim.State{Scanned: 2, Garbage: 2}) {
				t.Fatalf("state %+v", st)
			}
		})
	}
}

// At 9600 baud a byte takes about a millisecond on the wire: a code of 15
// characters and CR LF cannot arrive sooner than 17 bytes' time, and the
// gap comes after each code. (Lower bounds only: a loaded machine is
// slower, never faster.)
func TestPace(t *testing.T) {
	sim := scannersim.New(scannersim.Options{Gap: 100 * time.Millisecond})
	host := serve(t, sim)
	start := time.Now()
	sim.Scan("SF1234567890123", "SF1234567890124")
	first := read(t, host, 17)
	firstAt := time.Since(start)
	second := read(t, host, 17)
	secondAt := time.Since(start)
	if string(first) != "SF1234567890123\r\n" || string(second) != "SF1234567890124\r\n" {
		t.Fatalf("sent %q %q", first, second)
	}
	wire := 17 * 10 * time.Second / 9600
	if firstAt < wire {
		t.Errorf("first code in %v, faster than the line (%v)", firstAt, wire)
	}
	if secondAt < 2*wire+100*time.Millisecond {
		t.Errorf("second code in %v: no gap after the first", secondAt)
	}
}

// Wait waits for what is queued to be sent; a Serve stopped before sends
// the rest next time.
func TestWaitAndResume(t *testing.T) {
	sim := scannersim.New(scannersim.Options{Baud: -1})
	sim.Scan("SF1001", "SF1002")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := sim.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait without Serve: %v", err)
	}
	if st := sim.State(); st.Queued != 2 || st.Scanned != 0 {
		t.Fatalf("state %+v", st)
	}
	host := serve(t, sim)
	var got bytes.Buffer
	got.Write(read(t, host, 16))
	if got.String() != "SF1001\r\nSF1002\r\n" {
		t.Fatalf("sent %q", got.String())
	}
}

// A link that fails ends Serve with the write's error.
func TestServeWriteError(t *testing.T) {
	sim := scannersim.New(scannersim.Options{Baud: -1})
	host, dev := net.Pipe()
	host.Close()
	sim.Scan("SF1001")
	err := sim.Serve(context.Background(), dev)
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Serve: %v, want the write's error", err)
	}
}
