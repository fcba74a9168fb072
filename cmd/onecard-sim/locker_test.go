package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"onecard/devices"
	"onecard/devices/locker"
)

func TestLockerUsage(t *testing.T) {
	checkUsage(t, []usageCase{
		{[]string{"--help"}, 0, "locker"},
		{[]string{"locker", "--help"}, 0, "stick N"},
		{[]string{"locker", "--help"}, 0, "-doors doors"},
		{[]string{"locker"}, 2, "--pty-link is required"},
		{[]string{"locker", "--pty-link", "x", "--doors", "0"}, 2, "--doors is 1 to 256"},
		{[]string{"locker", "--pty-link", "x", "--doors", "257"}, 2, "--doors is 1 to 256"},
		{[]string{"locker", "--pty-link", "x", "--baud", "-1"}, 2, "--baud"},
		{[]string{"locker", "--pty-link", "x", "--pop-delay", "-1s"}, 2, "--pop-delay"},
		{[]string{"locker", "--pty-link", "x", "extra"}, 2, `unexpected argument "extra"`},
	})
}

// TestLockerConsole drives the commands in process.
func TestLockerConsole(t *testing.T) {
	link := filepath.Join(t.TempDir(), "locker")
	inW, _, done, say := startConsole(t, link, "locker", "--pty-link", link, "--doors", "40", "--baud", "0")
	checkSays(t, say, []consoleCase{
		{"status", "doors=40 boards=3 open=- stuck=- silent=- queries=0 unlocks=0 ignored=0 baud=0 pty=/dev/"},
		{"open 7", "opened 7"},
		{"open 40", "opened 40"},
		{"status", "open=7,40 stuck=-"},
		{"close 7", "closed 7"},
		{"status", "open=40 stuck=-"},
		{"close all", "closed all"},
		{"status", "open=- stuck=-"},
		{"close 41", `error: close: no door "41" (doors 1 to 40)`},
		{"close", "error: close N (a door, 1 to 40)"},
		{"stick 3", "stuck 3"},
		{"stick x", `error: stick: no door "x"`},
		{"status", "open=- stuck=3 silent=-"},
		{"unstick 3", "unstuck 3"},
		{"silence 1", "board 1 silent"},
		{"status", "stuck=- silent=1 "},
		{"silence", "all boards silent"},
		{"status", "silent=0,1,2 "},
		{"answer", "all boards answering"},
		{"silence 2", "board 2 silent"},
		{"answer 2", "board 2 answering"},
		{"silence 3", "error: silence [B] (a board, 0 to 2)"},
		{"garbage", "garbage armed"},
		{"garbage 13 37", "garbage armed"},
		{"garbage zz", "error: garbage"},
		{"corrupt", "corrupt armed"},
		{"fly", `error: unknown command "fly"`},
		{"help", "commands: close N|all"},
	})
	quitConsole(t, inW, done)
	checkLinkGone(t, link)
}

// onecard-sim locker in a process of its own, with the driver on the
// symlink at 19200 baud: a door opens and reads open; closed on stdin, it
// reads closed; stuck on stdin, it does not open; a silenced board is
// reported; SIGTERM stops it.
func TestProcessLocker(t *testing.T) {
	link := filepath.Join(t.TempDir(), "locker")
	cmd, stdin, out, exited := startSim(t, true, "locker", "--pty-link", link, "--doors", "48")
	defer stdin.Close()

	port, err := devices.OpenSerial(devices.SerialConfig{Path: link, Baud: 19200})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	b, err := locker.New(port, 48, &locker.Opts{Timeout: 2 * time.Second}) // ample on a loaded machine
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*wait)
	defer cancel()
	tell := func(cmd, want string) {
		t.Helper()
		io.WriteString(stdin, cmd+"\n")
		if got := next(t, out); !strings.Contains(got, want) {
			t.Fatalf("%s: %q, want %q…", cmd, got, want)
		}
	}
	doors := func(open ...int) []devices.DoorState {
		s := make([]devices.DoorState, 48)
		for i := range s {
			s[i] = devices.DoorClosed
		}
		for _, d := range open {
			s[d-1] = devices.DoorOpen
		}
		return s
	}

	if err := b.Open(ctx, 33); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Status(ctx); err != nil || !slices.Equal(got, doors(33)) {
		t.Fatalf("Status = %v, %v", got, err)
	}
	tell("status", "open=33 stuck=- silent=- queries=4 unlocks=1")
	tell("close 33", "closed 33")
	if got, err := b.Status(ctx); err != nil || !slices.Equal(got, doors()) {
		t.Fatalf("Status after close 33 = %v, %v", got, err)
	}
	tell("stick 2", "stuck 2")
	if err := b.Open(ctx, 2); !errors.Is(err, devices.ErrDoorNotOpened) {
		t.Fatalf("Open of a stuck door: %v", err)
	}
	tell("silence 2", "board 2 silent")
	// Reconnect with a short timeout (no answer is coming), as devices.Port
	// would: a new port, a new driver.
	b.Close()
	port.Close()
	if port, err = devices.OpenSerial(devices.SerialConfig{Path: link, Baud: 19200}); err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if b, err = locker.New(port, 48, &locker.Opts{Timeout: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var e *locker.Error
	if _, err := b.Status(ctx); !errors.Is(err, locker.ErrNoAnswer) || !errors.As(err, &e) || e.Board != 2 {
		t.Fatalf("Status with board 2 silent: %v", err)
	}

	terminate(t, cmd, exited)
	checkLinkGone(t, link)
}
