package escpos_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"onecard/devices"
	"onecard/devices/devicestest"
	"onecard/devices/escpos"
)

// Byte-exact fixtures: the queries DLE EOT n and a ready printer's answer.
var (
	q1 = []byte{0x10, 0x04, 0x01}
	q2 = []byte{0x10, 0x04, 0x02}
	q3 = []byte{0x10, 0x04, 0x03}
	q4 = []byte{0x10, 0x04, 0x04}
	ok = []byte{0x12}
)

// testOpts keeps failing paths quick.
var testOpts = escpos.Opts{Timeout: 100 * time.Millisecond, Baud: 115200}

func newPrinter(t *testing.T, steps ...devicestest.Step) *escpos.Printer {
	t.Helper()
	opts := testOpts
	p := escpos.New(devicestest.Playback(t, steps...), &opts)
	t.Cleanup(func() { p.Close() })
	return p
}

func wantOp(t *testing.T, err error, op string, sentinel error) {
	t.Helper()
	var e *escpos.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *escpos.Error", err, err)
	}
	if e.Op != op {
		t.Errorf("op = %q, want %q", e.Op, op)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("err = %v, want it to wrap %v", err, sentinel)
	}
	if !strings.HasPrefix(err.Error(), "escpos: "+op+": ") {
		t.Errorf("message %q does not name the op", err)
	}
}

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []devicestest.Step
		want  escpos.Status
	}{
		{"ready", []devicestest.Step{{Want: q1, Reply: ok}, {Want: q2, Reply: ok}, {Want: q4, Reply: ok}}, escpos.Status{}},
		{"near end", []devicestest.Step{{Want: q1, Reply: ok}, {Want: q2, Reply: ok}, {Want: q4, Reply: []byte{0x1E}}}, escpos.Status{PaperNearEnd: true}},
		{"paper out", []devicestest.Step{{Want: q1, Reply: []byte{0x1A}}, {Want: q2, Reply: []byte{0x32}}, {Want: q4, Reply: []byte{0x7E}}},
			escpos.Status{Offline: true, PaperStopped: true, PaperNearEnd: true, PaperOut: true}},
		// An error makes the driver ask which.
		{"cutter jammed", []devicestest.Step{{Want: q1, Reply: []byte{0x1A}}, {Want: q2, Reply: []byte{0x52}}, {Want: q4, Reply: ok}, {Want: q3, Reply: []byte{0x1A}}},
			escpos.Status{Offline: true, Error: true, CutterError: true}},
		// XON/XOFF from a printer set to software flow control are skipped.
		{"flow control", []devicestest.Step{{Want: q1, Reply: []byte{0x13, 0x11, 0x12}}, {Want: q2, Reply: ok}, {Want: q4, Reply: ok}}, escpos.Status{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPrinter(t, tc.steps...)
			got, err := p.Status(context.Background())
			if err != nil || got != tc.want {
				t.Fatalf("Status = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestPrint(t *testing.T) {
	job := build(t, receipt())
	p := newPrinter(t,
		devicestest.Step{Want: q1, Reply: ok},
		devicestest.Step{Want: q2, Reply: ok},
		devicestest.Step{Want: q4, Reply: []byte{0x1E}}, // near end still prints
		devicestest.Step{Want: job},
	)
	if err := p.Print(context.Background(), job); err != nil {
		t.Fatal(err)
	}
}

// A printer that is not ready gets no job: the script ends after the
// queries, and any byte more fails the test.
func TestPrintRefused(t *testing.T) {
	for _, tc := range []struct {
		name       string
		a1, a2, a4 byte
		want, not  error
	}{
		{"cover open", 0x1A, 0x16, 0x12, escpos.ErrCoverOpen, escpos.ErrPaperOut},
		{"paper out", 0x1A, 0x32, 0x72, escpos.ErrPaperOut, escpos.ErrCoverOpen},
		{"paper sensor alone", 0x12, 0x12, 0x72, escpos.ErrPaperOut, escpos.ErrOffline},
		{"feed button", 0x1A, 0x1A, 0x12, escpos.ErrOffline, escpos.ErrPaperOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPrinter(t,
				devicestest.Step{Want: q1, Reply: []byte{tc.a1}},
				devicestest.Step{Want: q2, Reply: []byte{tc.a2}},
				devicestest.Step{Want: q4, Reply: []byte{tc.a4}},
			)
			err := p.Print(context.Background(), []byte("never sent\n"))
			wantOp(t, err, "print", tc.want)
			if errors.Is(err, tc.not) {
				t.Errorf("err = %v, should not wrap %v", err, tc.not)
			}
		})
	}
	t.Run("cover open and paper out", func(t *testing.T) {
		p := newPrinter(t,
			devicestest.Step{Want: q1, Reply: []byte{0x1A}},
			devicestest.Step{Want: q2, Reply: []byte{0x36}},
			devicestest.Step{Want: q4, Reply: []byte{0x7E}},
		)
		err := p.Print(context.Background(), []byte("never sent\n"))
		wantOp(t, err, "print", escpos.ErrCoverOpen)
		wantOp(t, err, "print", escpos.ErrPaperOut)
	})
}

func TestNoAnswer(t *testing.T) {
	p := newPrinter(t, devicestest.Step{Want: q1})
	err := p.Print(context.Background(), []byte("never sent\n"))
	wantOp(t, err, "status query 1", devices.ErrTimeout)
	if !strings.Contains(err.Error(), "no answer within") {
		t.Errorf("message %q", err)
	}
}

// A query that timed out leaves the driver working: the next query waits
// for a quiet line first, then goes.
func TestRecoversAfterTimeout(t *testing.T) {
	p := newPrinter(t,
		devicestest.Step{Want: q1},
		devicestest.Step{Want: q1, Reply: ok},
		devicestest.Step{Want: q2, Reply: ok},
		devicestest.Step{Want: q4, Reply: []byte{0x1E}},
	)
	if _, err := p.Status(context.Background()); !errors.Is(err, devices.ErrTimeout) {
		t.Fatalf("first Status: %v", err)
	}
	st, err := p.Status(context.Background())
	if err != nil || st != (escpos.Status{PaperNearEnd: true}) {
		t.Fatalf("second Status = %+v, %v", st, err)
	}
}

func TestGarbageAnswer(t *testing.T) {
	p := newPrinter(t, devicestest.Step{Want: q1, Reply: ok}, devicestest.Step{Want: q2, Reply: []byte{0xFF}})
	err := p.Print(context.Background(), []byte("never sent\n"))
	wantOp(t, err, "status query 2", escpos.ErrNotStatus)
	if !strings.Contains(err.Error(), "0xFF") {
		t.Errorf("message %q lacks the byte", err)
	}
}

func TestPortFailure(t *testing.T) {
	drv, dev := net.Pipe()
	dev.Close()
	opts := testOpts
	p := escpos.New(drv, &opts)
	defer p.Close()
	_, err := p.Status(context.Background())
	wantOp(t, err, "status query 1", devices.ErrPortFailed)
	// For good.
	_, err = p.Status(context.Background())
	wantOp(t, err, "status", devices.ErrPortFailed)
}

func TestCloseAndCancel(t *testing.T) {
	drv, dev := net.Pipe()
	defer dev.Close()
	defer drv.Close()
	opts := escpos.Opts{Timeout: time.Hour}
	p := escpos.New(drv, &opts)
	go func() { // the device hears the query and stays silent
		b := make([]byte, 3)
		dev.Read(b)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := p.Status(ctx); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
	p.Close()
	if _, err := p.Status(context.Background()); !errors.Is(err, escpos.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := p.Print(context.Background(), nil); !errors.Is(err, escpos.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
