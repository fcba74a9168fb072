//go:build unix

package scanner_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onecard/devices"
	"onecard/devices/scanner"
	firmwaresim "onecard/firmware-sim"
	scannersim "onecard/firmware-sim/scanner"
)

// rig is the driver on a real serial port (tarm/serial on the pty's
// symlink, reads timing out every 100 ms) and the simulated scanner on the
// pty's master, at 9600 baud.
type rig struct {
	sim  *scannersim.Sim
	pty  *firmwaresim.PTY
	port io.ReadWriteCloser
	sc   *scanner.Scanner
}

func newRig(t *testing.T, o scannersim.Options, opts *scanner.Opts) *rig {
	t.Helper()
	link := filepath.Join(t.TempDir(), "scanner")
	p, err := firmwaresim.OpenPTY(link)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	o.Baud = 9600
	sim := scannersim.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Serve(ctx, p) }()
	port, err := devices.OpenSerial(devices.SerialConfig{Path: link, Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{sim: sim, pty: p, port: port, sc: scanner.New(port, opts)}
	t.Cleanup(func() {
		r.sc.Close()
		port.Close()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(step):
			t.Error("Serve did not stop")
		}
		p.Close()
	})
	return r
}

// Lines arrive a byte a millisecond, in as many reads: whatever ends them,
// each is one code.
func TestPtySuffixes(t *testing.T) {
	for name, suffix := range map[string]string{"CR": "\r", "LF": "\n", "CRLF": "\r\n"} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, scannersim.Options{Suffix: suffix}, nil)
			time.Sleep(250 * time.Millisecond) // two read timeouts: no data yet is not the end
			r.sim.Scan("SF1234567890123", "1Z999AA10123456784", "773-1234-5678")
			expect(t, r.sc, codes("SF1234567890123", "1Z999AA10123456784", "773-1234-5678")...)
		})
	}
}

// A clerk's batch: every code arrives, in order, with its own time.
func TestPtyBatch(t *testing.T) {
	r := newRig(t, scannersim.Options{Gap: 5 * time.Millisecond}, nil)
	var want []string
	for i := range 40 {
		want = append(want, fmt.Sprintf("YT%013d", 7300000000000+i))
	}
	r.sim.Scan(want...)
	var last time.Time
	for i, w := range want {
		s, err := next(t, r.sc)
		if err != nil || s.Code != w {
			t.Fatalf("scan %d: %q %v, want %q", i, s.Code, err, w)
		}
		if s.At.Before(last) {
			t.Fatalf("scan %d at %v, before the one before (%v)", i, s.At, last)
		}
		last = s.At
	}
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	if err := r.sim.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.sim.State(); st.Scanned != len(want) || st.Queued != 0 {
		t.Fatalf("sim: %+v", st)
	}
}

// Over-long, binary and noisy lines are rejected; the codes after them
// come through, the session goes on.
func TestPtyGarbage(t *testing.T) {
	r := newRig(t, scannersim.Options{Prefix: "]C0"}, &scanner.Opts{AIM: true, LineGap: 300 * time.Millisecond})
	r.sim.Scan("SF1001")
	r.sim.Scan(strings.Repeat("9", 200))
	r.sim.InjectGarbage([]byte{0x8D, 0x0F, 0xFF, 0x00, '\r', '\n'})
	r.sim.Scan("SF\x1b1002")
	r.sim.InjectGarbage([]byte{0xFF, 'A', 'B'}) // no end: noise before the next code
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	if err := r.sim.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // longer than LineGap
	r.sim.Scan("SF1003")
	expect(t, r.sc,
		item{code: "SF1001"},
		item{err: scanner.ErrTooLong},
		item{err: scanner.ErrEncoding},
		item{err: scanner.ErrControl},
		item{err: scanner.ErrUnterminated},
		item{code: "SF1003"},
	)
	if err := r.sim.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.sim.State(); st.Scanned != 4 || st.Garbage != 9 {
		t.Errorf("sim: %+v", st)
	}
}

// The pty's master closing, as an unplugged USB adapter hangs up its tty,
// stops the driver with ErrPortFailed.
func TestPtyHangUp(t *testing.T) {
	r := newRig(t, scannersim.Options{}, nil)
	r.sim.Scan("SF1001")
	expect(t, r.sc, item{code: "SF1001"})
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	if err := r.sim.Wait(ctx); err != nil { // the LF after the CR that ended the code
		t.Fatal(err)
	}
	r.pty.Close()
	if _, err := next(t, r.sc); !errors.Is(err, devices.ErrPortFailed) {
		t.Fatalf("after hang-up: %v, want ErrPortFailed", err)
	}
}
