package locker_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"onecard/devices"
	"onecard/devices/devicestest"
	"onecard/devices/locker"
)

type step = devicestest.Step

// Requests as they go on the wire, by hand.
var (
	query0   = []byte{0x02, 0x00, 0x30, 0x03, 0x35}
	query1   = []byte{0x02, 0x10, 0x30, 0x03, 0x45}
	query2   = []byte{0x02, 0x20, 0x30, 0x03, 0x55}
	unlock18 = []byte{0x02, 0x11, 0x31, 0x03, 0x47} // board 1, lock 1
	unlock5  = []byte{0x02, 0x04, 0x31, 0x03, 0x3A} // board 0, lock 4
)

// fixtureOpts keep fixtures quick: a silent board costs 3 × 50 ms.
var fixtureOpts = locker.Opts{Timeout: 50 * time.Millisecond, ConfirmDelay: 5 * time.Millisecond, ConfirmPolls: 3}

func newBank(t *testing.T, doors int, steps ...step) *locker.Bank {
	t.Helper()
	opts := fixtureOpts
	b, err := locker.New(devicestest.Playback(t, steps...), doors, &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func ctxStep(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// states makes the expected Status: every door closed but those listed.
func states(doors int, set map[int]devices.DoorState) []devices.DoorState {
	s := make([]devices.DoorState, doors)
	for i := range s {
		s[i] = devices.DoorClosed
	}
	for d, st := range set {
		s[d-1] = st
	}
	return s
}

const (
	closed  = devices.DoorClosed
	open    = devices.DoorOpen
	unknown = devices.DoorUnknown
)

// Twenty doors are two boards; door 20 is lock 3 of board 1, and board 1's
// locks 4–15 (no doors) are not reported whatever their bits say.
func TestStatusFixture(t *testing.T) {
	b := newBank(t, 20,
		step{Want: query0, Reply: reply(0x00, 0xEF, 0xFF)}, // lock 4 (door 5) open
		step{Want: query1, Reply: reply(0x10, 0x0D, 0xFF)}, // lock 1 (door 18) open
	)
	if b.Doors() != 20 || b.Boards() != 2 {
		t.Fatalf("Doors %d, Boards %d", b.Doors(), b.Boards())
	}
	got, err := b.Status(ctxStep(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := states(20, map[int]devices.DoorState{5: open, 18: open}); !slices.Equal(got, want) {
		t.Fatalf("Status = %v\nwant %v", got, want)
	}
}

// The board answers the unlock with the door still latched (it has not
// moved yet); the poll after it says open.
func TestOpenFixture(t *testing.T) {
	b := newBank(t, 48,
		step{Want: unlock18, Reply: reply(0x11, 0xFF, 0xFF)},
		step{Want: query1, Reply: reply(0x10, 0xFD, 0xFF)},
	)
	if err := b.Open(ctxStep(t), 18); err != nil {
		t.Fatal(err)
	}
}

// A door slow to spring open is confirmed by a later poll.
func TestOpenConfirmedBySecondPoll(t *testing.T) {
	b := newBank(t, 48,
		step{Want: unlock5, Reply: reply(0x04, 0xFF, 0xFF)},
		step{Want: query0, Reply: reply(0x00, 0xFF, 0xFF)},
		step{Want: query0, Reply: reply(0x00, 0xEF, 0xFF)},
	)
	if err := b.Open(ctxStep(t), 5); err != nil {
		t.Fatal(err)
	}
}

// A stuck door: the board took the unlock, every poll says latched. The
// unlock is not sent again (the script fails on extra bytes).
func TestOpenStuckFixture(t *testing.T) {
	b := newBank(t, 48,
		step{Want: unlock5, Reply: reply(0x04, 0xFF, 0xFF)},
		step{Want: query0, Reply: reply(0x00, 0xFF, 0xFF)},
		step{Want: query0, Reply: reply(0x00, 0xFF, 0xFF)},
		step{Want: query0, Reply: reply(0x00, 0xFF, 0xFF)},
	)
	err := b.Open(ctxStep(t), 5)
	var e *locker.Error
	if !errors.Is(err, devices.ErrDoorNotOpened) || errors.Is(err, devices.ErrTimeout) || !errors.As(err, &e) || e.Door != 5 || e.Board != 0 || e.Op != "open" {
		t.Fatalf("Open of a stuck door: %v", err)
	}
	t.Log(err)
}

// An unlock the board did not answer (lost on the line) is sent again
// while the door stays latched.
func TestOpenUnlockLost(t *testing.T) {
	b := newBank(t, 48,
		step{Want: unlock5}, // no answer
		step{Want: query0, Reply: reply(0x00, 0xFF, 0xFF)},
		step{Want: query0, Reply: reply(0x00, 0xFF, 0xFF)},
		step{Want: query0, Reply: reply(0x00, 0xFF, 0xFF)},
		step{Want: unlock5, Reply: reply(0x04, 0xFF, 0xFF)},
		step{Want: query0, Reply: reply(0x00, 0xEF, 0xFF)},
	)
	if err := b.Open(ctxStep(t), 5); err != nil {
		t.Fatal(err)
	}
}

// A board that answers status but never the unlock: three unlocks (one and
// Retries), then ErrDoorNotOpened.
func TestOpenUnlockNeverAnswered(t *testing.T) {
	var steps []step
	for range 3 {
		steps = append(steps, step{Want: unlock5})
		for range fixtureOpts.ConfirmPolls {
			steps = append(steps, step{Want: query0, Reply: reply(0x00, 0xFF, 0xFF)})
		}
	}
	b := newBank(t, 48, steps...)
	err := b.Open(ctxStep(t), 5)
	if !errors.Is(err, devices.ErrDoorNotOpened) || !strings.Contains(err.Error(), "never the unlock, sent 3 times") {
		t.Fatalf("Open: %v", err)
	}
}

// Board 1 of three does not answer: its doors are unknown, the others'
// are read, and the error names board 1 and wraps ErrNoAnswer and
// devices.ErrTimeout.
func TestSilentBoardFixture(t *testing.T) {
	b := newBank(t, 48,
		step{Want: query0, Reply: reply(0x00, 0xFF, 0xFF)},
		step{Want: query1}, step{Want: query1}, step{Want: query1},
		step{Want: query2, Reply: reply(0x20, 0xFF, 0x7F)}, // door 48 open
	)
	got, err := b.Status(ctxStep(t))
	var e *locker.Error
	if !errors.Is(err, locker.ErrNoAnswer) || !errors.Is(err, devices.ErrTimeout) || !errors.As(err, &e) || e.Board != 1 || e.Op != "status" {
		t.Fatalf("Status: %v", err)
	}
	if want := "locker: status of board 1: 3 tries, the line was silent: no valid answer from the board: device did not answer in time"; err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
	set := map[int]devices.DoorState{48: open}
	for d := 17; d <= 32; d++ {
		set[d] = unknown
	}
	if want := states(48, set); !slices.Equal(got, want) {
		t.Fatalf("Status = %v\nwant %v", got, want)
	}
}

// Opening a door on a silent board: the unlock goes three times, the polls
// get nothing: ErrNoAnswer, not a stuck door.
func TestOpenSilentBoardFixture(t *testing.T) {
	b := newBank(t, 48,
		step{Want: unlock18},
		step{Want: query1}, step{Want: query1}, step{Want: query1},
	)
	err := b.Open(ctxStep(t), 18)
	if !errors.Is(err, locker.ErrNoAnswer) || errors.Is(err, devices.ErrDoorNotOpened) {
		t.Fatalf("Open: %v", err)
	}
}

// Garbage, the echo of the query, a stray STX, a damaged frame and another
// board's reply come before the answer: all skipped.
func TestGarbageFixture(t *testing.T) {
	damaged := reply(0x00, 0x00, 0x00)
	damaged[8] ^= 0x5A
	b := newBank(t, 16,
		step{Want: query0, Reply: cat(query0, []byte{0xFF, 0x02, 0x13}, damaged, reply(0x10, 0, 0), []byte{0x02}, reply(0x00, 0x7F, 0xFF))},
	)
	got, err := b.Status(ctxStep(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := states(16, map[int]devices.DoorState{8: open}); !slices.Equal(got, want) {
		t.Fatalf("Status = %v\nwant %v", got, want)
	}
}

// A reply with a bad checksum is no answer: the query goes again.
func TestDamagedReplyRetried(t *testing.T) {
	damaged := reply(0x00, 0x00, 0x00)
	damaged[8] ^= 0x01
	b := newBank(t, 16,
		step{Want: query0, Reply: damaged},
		step{Want: query0, Reply: reply(0x00, 0xFF, 0xFF)},
	)
	got, err := b.Status(ctxStep(t))
	if err != nil || !slices.Equal(got, states(16, nil)) {
		t.Fatalf("Status = %v, %v", got, err)
	}
}

// Door numbers outside the bank send nothing (the script is empty).
func TestNoSuchDoor(t *testing.T) {
	b := newBank(t, 48)
	for _, d := range []int{0, -1, 49} {
		err := b.Open(ctxStep(t), d)
		var e *locker.Error
		if !errors.Is(err, locker.ErrNoSuchDoor) || !errors.As(err, &e) || e.Board != -1 {
			t.Errorf("Open(%d): %v", d, err)
		}
	}
	for _, tc := range []struct{ door, board, lock int }{{1, 0, 0}, {16, 0, 15}, {17, 1, 0}, {48, 2, 15}} {
		if board, lock, err := b.Locate(tc.door); board != tc.board || lock != tc.lock || err != nil {
			t.Errorf("Locate(%d) = %d, %d, %v", tc.door, board, lock, err)
		}
	}
}

func TestNewBankSize(t *testing.T) {
	for _, doors := range []int{0, -1, 257} {
		if _, err := locker.New(devicestest.Playback(t), doors, nil); err == nil {
			t.Errorf("New with %d doors: no error", doors)
		}
	}
	b, err := locker.New(devicestest.Playback(t), 256, nil)
	if err != nil || b.Boards() != 16 {
		t.Fatalf("256 doors: %v", err)
	}
	b.Close()
}

func TestClosed(t *testing.T) {
	b := newBank(t, 16)
	b.Close()
	if _, err := b.Status(ctxStep(t)); !errors.Is(err, locker.ErrClosed) {
		t.Fatalf("Status after Close: %v", err)
	}
	if err := b.Open(ctxStep(t), 1); !errors.Is(err, locker.ErrClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
}

// brokenPort fails every write.
type brokenPort struct{ done chan struct{} }

func (p brokenPort) Read([]byte) (int, error) {
	<-p.done
	return 0, io.ErrClosedPipe
}

func (brokenPort) Write([]byte) (int, error) { return 0, errors.New("input/output error") }

func TestPortFailed(t *testing.T) {
	p := brokenPort{done: make(chan struct{})}
	defer close(p.done)
	b, err := locker.New(p, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.Status(ctxStep(t))
	if !errors.Is(err, devices.ErrPortFailed) {
		t.Fatalf("Status: %v", err)
	}
	// Broken for good.
	if err := b.Open(ctxStep(t), 1); !errors.Is(err, devices.ErrPortFailed) {
		t.Fatalf("Open: %v", err)
	}
}

// A closed pipe (the device end gone) is a port that hung up.
func TestHangUp(t *testing.T) {
	b, err := locker.New(hungUp{}, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := b.Status(ctxStep(t))
		if errors.Is(err, devices.ErrPortFailed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Status on a hung-up port: %v", err)
		}
	}
}

// hungUp reads io.EOF at once, as a tty whose adapter was unplugged; writes
// vanish.
type hungUp struct{}

func (hungUp) Read([]byte) (int, error)    { return 0, io.EOF }
func (hungUp) Write(p []byte) (int, error) { return len(p), nil }

// A board drowned in noise: what the line carried after the last try
// instead of an answer is counted in the error.
func TestNoisyBoardCounted(t *testing.T) {
	damaged := reply(0x00, 0x00, 0x00)
	damaged[8] ^= 0x5A
	noise := cat([]byte{0xFF, 0xFE, 0xFD}, damaged, reply(0x10, 0xFF, 0xFF))
	b := newBank(t, 16,
		step{Want: query0, Reply: noise}, step{Want: query0, Reply: noise}, step{Want: query0, Reply: noise},
	)
	_, err := b.Status(ctxStep(t))
	if !errors.Is(err, locker.ErrNoAnswer) {
		t.Fatalf("Status: %v", err)
	}
	if want := "3 tries, the line carried 3 garbage bytes, 1 damaged frame(s), 1 reply(ies) from other boards: no valid answer"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\nwant …%q…", err, want)
	}
}
