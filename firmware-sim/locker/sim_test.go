package lockersim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	lockersim "onecard/firmware-sim/locker"
)

// line is the host's end of a net.Pipe whose other end a Sim serves.
type line struct {
	t    *testing.T
	conn net.Conn
}

func serve(t *testing.T, sim *lockersim.Sim) *line {
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
		case <-time.After(5 * time.Second):
			t.Error("Serve did not stop")
		}
		host.Close()
		dev.Close()
	})
	return &line{t: t, conn: host}
}

// ask writes req and reads n bytes back.
func (l *line) ask(req []byte, n int) []byte {
	l.t.Helper()
	l.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := l.conn.Write(req); err != nil {
		l.t.Fatal(err)
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(l.conn, got); err != nil {
		l.t.Fatalf("after % X: %v", req, err)
	}
	return got
}

// silent writes req and checks that nothing comes back for a while: the
// simulator answers at once, unpaced, so 200 ms of silence is no answer.
func (l *line) silent(req []byte) {
	l.t.Helper()
	l.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := l.conn.Write(req); err != nil {
		l.t.Fatal(err)
	}
	l.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	b := make([]byte, 16)
	if n, err := l.conn.Read(b); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		l.t.Fatalf("after % X: read % X, %v; want silence", req, b[:n], err)
	}
}

// frame adds the SUM: the low byte of the sum of b.
func frame(b ...byte) []byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return append(b, s)
}

func TestGoldenExchanges(t *testing.T) {
	sim := lockersim.New(lockersim.Options{Doors: 48})
	l := serve(t, sim)
	// The status query of PROTOCOLS.md and its answer: every lock latched.
	if got, want := l.ask([]byte{0x02, 0x00, 0x30, 0x03, 0x35}, 9), []byte{0x02, 0x00, 0x35, 0xFF, 0xFF, 0x00, 0x00, 0x03, 0x38}; !bytes.Equal(got, want) {
		t.Fatalf("status board 0: % X, want % X", got, want)
	}
	// Unlock door 18 (board 1, lock 1): answered with the door still
	// latched, ADDR echoed; the next query has it open.
	if got, want := l.ask(frame(0x02, 0x11, 0x31, 0x03), 9), frame(0x02, 0x11, 0x35, 0xFF, 0xFF, 0, 0, 0x03); !bytes.Equal(got, want) {
		t.Fatalf("unlock door 18: % X, want % X", got, want)
	}
	if got, want := l.ask(frame(0x02, 0x10, 0x30, 0x03), 9), frame(0x02, 0x10, 0x35, 0xFD, 0xFF, 0, 0, 0x03); !bytes.Equal(got, want) {
		t.Fatalf("status board 1: % X, want % X", got, want)
	}
	st := sim.State()
	if !st.Doors[17].Open || st.Doors[17].Unlocks != 1 || st.Unlocks != 1 || st.Queries != 2 {
		t.Fatalf("state %+v", st)
	}
	// It stays open until closed.
	if got := l.ask(frame(0x02, 0x10, 0x30, 0x03), 9); got[3] != 0xFD {
		t.Fatalf("door 18 closed by itself: % X", got)
	}
	if err := sim.Close(18); err != nil {
		t.Fatal(err)
	}
	if got := l.ask(frame(0x02, 0x10, 0x30, 0x03), 9); got[3] != 0xFF {
		t.Fatalf("after Close(18): % X", got)
	}
}

// Twenty doors: board 1 has four locks wired; the others read open.
func TestUnwiredLocks(t *testing.T) {
	l := serve(t, lockersim.New(lockersim.Options{Doors: 20}))
	if got, want := l.ask(frame(0x02, 0x10, 0x30, 0x03), 9), frame(0x02, 0x10, 0x35, 0x0F, 0x00, 0, 0, 0x03); !bytes.Equal(got, want) {
		t.Fatalf("status board 1: % X, want % X", got, want)
	}
	// No board 2 on this bus.
	l.silent(frame(0x02, 0x20, 0x30, 0x03))
}

// Frames with a bad SUM or no ETX are ignored, but a request right behind
// a stray STX is heard; unknown commands get no answer.
func TestResync(t *testing.T) {
	sim := lockersim.New(lockersim.Options{Doors: 16})
	l := serve(t, sim)
	l.silent([]byte{0x02, 0x00, 0x30, 0x03, 0x36}) // bad SUM
	l.silent([]byte{0x02, 0x00, 0x30, 0x04, 0x36}) // no ETX
	l.silent(frame(0x02, 0x00, 0x32, 0x03))        // a command not simulated
	got := l.ask(append([]byte{0xFF, 0x02, 0x13, 0x02}, 0x02, 0x00, 0x30, 0x03, 0x35), 9)
	if got[0] != 0x02 || got[2] != 0x35 {
		t.Fatalf("after garbage: % X", got)
	}
	if st := sim.State(); st.Queries != 1 || st.Ignored != 1 {
		t.Fatalf("state %+v", st)
	}
}

// A stuck door takes the unlock and stays shut; freed, it still waits for
// the next unlock.
func TestStuck(t *testing.T) {
	sim := lockersim.New(lockersim.Options{Doors: 16})
	l := serve(t, sim)
	if err := sim.Stick(5, true); err != nil {
		t.Fatal(err)
	}
	l.ask(frame(0x02, 0x04, 0x31, 0x03), 9)
	if got := l.ask(frame(0x02, 0x00, 0x30, 0x03), 9); got[3] != 0xFF {
		t.Fatalf("stuck door opened: % X", got)
	}
	sim.Stick(5, false)
	if got := l.ask(frame(0x02, 0x00, 0x30, 0x03), 9); got[3] != 0xFF {
		t.Fatalf("freed door opened by itself: % X", got)
	}
	l.ask(frame(0x02, 0x04, 0x31, 0x03), 9)
	if got := l.ask(frame(0x02, 0x00, 0x30, 0x03), 9); got[3] != 0xEF {
		t.Fatalf("door 5 after the second unlock: % X", got)
	}
	if d := sim.State().Doors[4]; !d.Open || d.Stuck || d.Unlocks != 2 {
		t.Fatalf("door 5: %+v", d)
	}
}

// A silent board neither answers nor acts; the others go on.
func TestSilent(t *testing.T) {
	sim := lockersim.New(lockersim.Options{Doors: 48})
	l := serve(t, sim)
	if err := sim.SetSilent(1, true); err != nil {
		t.Fatal(err)
	}
	l.silent(frame(0x02, 0x10, 0x30, 0x03))
	l.silent(frame(0x02, 0x11, 0x31, 0x03))
	l.ask(frame(0x02, 0x20, 0x30, 0x03), 9)
	if st := sim.State(); st.Doors[17].Open || st.Doors[17].Unlocks != 0 || !st.Silent[1] || st.Silent[0] || st.Unheard != 2 {
		t.Fatalf("state %+v", st)
	}
	sim.SetSilent(-1, true)
	l.silent(frame(0x02, 0x00, 0x30, 0x03))
	sim.SetSilent(-1, false)
	l.ask(frame(0x02, 0x10, 0x30, 0x03), 9)
	if err := sim.SetSilent(3, true); err == nil {
		t.Fatal("SetSilent(3) on three boards: no error")
	}
}

func TestGarbageAndCorrupt(t *testing.T) {
	sim := lockersim.New(lockersim.Options{Doors: 16})
	l := serve(t, sim)
	sim.InjectGarbage([]byte{0xAA, 0x02})
	good := frame(0x02, 0x00, 0x35, 0xFF, 0xFF, 0, 0, 0x03)
	if got := l.ask(frame(0x02, 0x00, 0x30, 0x03), 11); !bytes.Equal(got, append([]byte{0xAA, 0x02}, good...)) {
		t.Fatalf("with garbage: % X", got)
	}
	sim.Corrupt()
	bad := append([]byte(nil), good...)
	bad[8] ^= 0xFF
	if got := l.ask(frame(0x02, 0x00, 0x30, 0x03), 9); !bytes.Equal(got, bad) {
		t.Fatalf("corrupt: % X, want % X", got, bad)
	}
	if got := l.ask(frame(0x02, 0x00, 0x30, 0x03), 9); !bytes.Equal(got, good) {
		t.Fatalf("after the fault: % X", got)
	}
}

// With a pop delay, the door reads latched until its time has come.
func TestPopDelay(t *testing.T) {
	sim := lockersim.New(lockersim.Options{Doors: 16, PopDelay: time.Hour})
	l := serve(t, sim)
	l.ask(frame(0x02, 0x00, 0x31, 0x03), 9)
	if got := l.ask(frame(0x02, 0x00, 0x30, 0x03), 9); got[3] != 0xFF {
		t.Fatalf("door 1 open before its pop delay: % X", got)
	}
	// Closing it before it springs open keeps it shut.
	sim.Close(1)
	if d := sim.State().Doors[0]; d.Open {
		t.Fatalf("door 1: %+v", d)
	}
}

func TestBadDoor(t *testing.T) {
	sim := lockersim.New(lockersim.Options{})
	if sim.Doors() != lockersim.DefaultDoors || sim.Boards() != 3 {
		t.Fatalf("doors %d, boards %d", sim.Doors(), sim.Boards())
	}
	for _, n := range []int{0, 49} {
		if sim.Close(n) == nil || sim.Stick(n, true) == nil {
			t.Errorf("door %d: no error", n)
		}
	}
}

// Paced at 19200 baud, a query and its answer (14 bytes) take at least
// their 7.3 ms on the wire. The bound is a lower one: a slow machine only
// makes it longer.
func TestPaced(t *testing.T) {
	l := serve(t, lockersim.New(lockersim.Options{Doors: 16, Baud: 19200}))
	start := time.Now()
	l.ask(frame(0x02, 0x00, 0x30, 0x03), 9)
	if d := time.Since(start); d < 7*time.Millisecond {
		t.Fatalf("answered in %v", d)
	}
}
