//go:build unix

package locker_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"onecard/devices"
	"onecard/devices/locker"
	firmwaresim "onecard/firmware-sim"
	lockersim "onecard/firmware-sim/locker"
)

// answerWithin is how long the driver waits for an answer in these tests:
// far more than the simulator needs, so that a loaded machine (the race
// detector, packages tested in parallel) does not fail them.
const answerWithin = 2 * time.Second

// rig is the driver on a real serial port (tarm/serial on the pty's
// symlink) and the simulated bank of 48 doors on the pty's master, at
// 19200 baud.
type rig struct {
	t    *testing.T
	sim  *lockersim.Sim
	link string
	port io.ReadWriteCloser
	bank *locker.Bank
}

func newRig(t *testing.T, o lockersim.Options) *rig {
	t.Helper()
	link := filepath.Join(t.TempDir(), "locker")
	p, err := firmwaresim.OpenPTY(link)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	o.Baud = 19200
	sim := lockersim.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Serve(ctx, p) }()
	r := &rig{t: t, sim: sim, link: link}
	r.connect(answerWithin)
	t.Cleanup(func() {
		r.disconnect()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not stop")
		}
		p.Close()
	})
	return r
}

// connect opens the port and makes a driver waiting timeout for answers,
// as devices.Port does on each reconnection.
func (r *rig) connect(timeout time.Duration) {
	r.t.Helper()
	r.disconnect()
	port, err := devices.OpenSerial(devices.SerialConfig{Path: r.link, Baud: 19200})
	if err != nil {
		r.t.Fatal(err)
	}
	bank, err := locker.New(port, r.sim.Doors(), &locker.Opts{Baud: 19200, Timeout: timeout})
	if err != nil {
		r.t.Fatal(err)
	}
	r.port, r.bank = port, bank
}

func (r *rig) disconnect() {
	if r.bank != nil {
		r.bank.Close()
		r.port.Close()
		r.bank, r.port = nil, nil
	}
}

func (r *rig) status(ctx context.Context) []devices.DoorState {
	r.t.Helper()
	got, err := r.bank.Status(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return got
}

// A parcel is taken out: door 18 opens, stays open, and reads closed once
// shut.
func TestOpenOverPTY(t *testing.T) {
	r := newRig(t, lockersim.Options{Doors: 48})
	ctx := ctxStep(t)
	if got := r.status(ctx); !slices.Equal(got, states(48, nil)) {
		t.Fatalf("Status = %v", got)
	}
	if err := r.bank.Open(ctx, 18); err != nil {
		t.Fatal(err)
	}
	if d := r.sim.State().Doors[17]; !d.Open || d.Unlocks != 1 {
		t.Fatalf("door 18 in the simulator: %+v", d)
	}
	if got := r.status(ctx); !slices.Equal(got, states(48, map[int]devices.DoorState{18: open})) {
		t.Fatalf("Status = %v", got)
	}
	if err := r.sim.Close(18); err != nil {
		t.Fatal(err)
	}
	if got := r.status(ctx); !slices.Equal(got, states(48, nil)) {
		t.Fatalf("Status after closing door 18 = %v", got)
	}
	// Each board of the bank, first and last doors.
	for _, d := range []int{1, 16, 17, 33, 48} {
		if err := r.bank.Open(ctx, d); err != nil {
			t.Fatalf("Open(%d): %v", d, err)
		}
	}
	want := states(48, map[int]devices.DoorState{1: open, 16: open, 17: open, 33: open, 48: open})
	if got := r.status(ctx); !slices.Equal(got, want) {
		t.Fatalf("Status = %v", got)
	}
}

// A door whose spring is slow is still confirmed, by a later poll.
func TestSlowDoorOverPTY(t *testing.T) {
	r := newRig(t, lockersim.Options{Doors: 16, PopDelay: 60 * time.Millisecond})
	if err := r.bank.Open(ctxStep(t), 3); err != nil {
		t.Fatal(err)
	}
}

// A stuck door: ErrDoorNotOpened after one unlock (the board took it);
// freed, the next Open opens it.
func TestStuckOverPTY(t *testing.T) {
	r := newRig(t, lockersim.Options{Doors: 48})
	ctx := ctxStep(t)
	r.sim.Stick(5, true)
	err := r.bank.Open(ctx, 5)
	if !errors.Is(err, devices.ErrDoorNotOpened) || errors.Is(err, devices.ErrTimeout) {
		t.Fatalf("Open of a stuck door: %v", err)
	}
	if d := r.sim.State().Doors[4]; d.Open || d.Unlocks != 1 {
		t.Fatalf("door 5 in the simulator: %+v", d)
	}
	r.sim.Stick(5, false)
	if err := r.bank.Open(ctx, 5); err != nil {
		t.Fatal(err)
	}
}

// Board 1 goes silent: Status reads boards 0 and 2 and reports board 1;
// Open on it fails with ErrNoAnswer and nothing opens. It answers again:
// all is well.
func TestSilentBoardOverPTY(t *testing.T) {
	r := newRig(t, lockersim.Options{Doors: 48})
	ctx := ctxStep(t)
	r.connect(150 * time.Millisecond) // no answer is coming anyway
	r.sim.Open(40)
	r.sim.SetSilent(1, true)
	got, err := r.bank.Status(ctx)
	var e *locker.Error
	if !errors.Is(err, locker.ErrNoAnswer) || !errors.Is(err, devices.ErrTimeout) || !errors.As(err, &e) || e.Board != 1 {
		t.Fatalf("Status with board 1 silent: %v", err)
	}
	set := map[int]devices.DoorState{40: open}
	for d := 17; d <= 32; d++ {
		set[d] = unknown
	}
	if want := states(48, set); !slices.Equal(got, want) {
		t.Fatalf("Status = %v\nwant %v", got, want)
	}
	if err := r.bank.Open(ctx, 20); !errors.Is(err, locker.ErrNoAnswer) {
		t.Fatalf("Open on the silent board: %v", err)
	}
	if d := r.sim.State().Doors[19]; d.Open || d.Unlocks != 0 {
		t.Fatalf("door 20 in the simulator: %+v", d)
	}
	r.sim.SetSilent(1, false)
	r.connect(answerWithin)
	if err := r.bank.Open(ctx, 20); err != nil {
		t.Fatal(err)
	}
}

// Garbage before an answer, then a corrupted answer: the driver reads
// past the first and asks again after the second.
func TestGarbageOverPTY(t *testing.T) {
	r := newRig(t, lockersim.Options{Doors: 48})
	ctx := ctxStep(t)
	r.sim.InjectGarbage([]byte{0x02, 0xFF, 0x02, 0x00, 0x35, 0x13})
	if got := r.status(ctx); !slices.Equal(got, states(48, nil)) {
		t.Fatalf("Status after garbage = %v", got)
	}
	r.sim.Corrupt()
	if err := r.bank.Open(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if got := r.status(ctx); !slices.Equal(got, states(48, map[int]devices.DoorState{7: open})) {
		t.Fatalf("Status = %v", got)
	}
}
