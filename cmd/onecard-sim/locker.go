package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	firmwaresim "onecard/firmware-sim"
	lockersim "onecard/firmware-sim/locker"
)

const lockerHelp = `Usage: onecard-sim locker --pty-link PATH [--doors N] [flags]

Simulates a parcel-locker bank: KR-CU16-style lock boards sharing one
RS-485 bus on a new pty, 16 doors a board at addresses 0, 1, 2 … (door d is
lock (d-1) mod 16 on board (d-1) div 16), every door shut and latched.
PATH becomes a symlink to the pty's slave; open it as the bank's serial
port, at the --baud rate, 8N1 (docs/locker.md). An unlocked door springs
open and stays open until closed here. The slave's device path is printed
first; then commands are read on standard input, one a line:

  close N|all       shut door N (or every door): its lock latches again
  open N            open door N by hand, as with the service key
  stick N           jam door N: its lock takes the unlock, the door stays shut
  unstick N         free it (the next unlock opens it)
  silence [B]       board B (default: every board) stops answering and acting,
                    as one without power or with its bus wires cut
  answer [B]        it answers again
  garbage [HEX]     write bytes (default 02 FF) before the next answer
  corrupt           send the next answer with a wrong checksum
  status            show the doors open and stuck, the silent boards, counts
  help              list the commands
  quit              stop

Flags:
`

// runLocker is the locker subcommand.
func runLocker(ctx context.Context, args []string, std stdio) error {
	fs := flag.NewFlagSet("onecard-sim locker", flag.ContinueOnError)
	link := fs.String("pty-link", "", "`path` of the symlink to the pty's slave (required); a stale symlink there is replaced")
	doors := fs.Int("doors", lockersim.DefaultDoors, fmt.Sprintf("how many `doors` the bank has, 1 to %d (16 a board)", lockersim.Most))
	baud := fs.Int("baud", 19200, "pace the line as a UART at this `rate` would (10 bits a byte); 0 sends at once")
	pop := fs.Duration("pop-delay", 0, "how long an unlocked door takes to spring open (its sensor to say open)")
	exitOnEOF := fs.Bool("exit-on-eof", false, "stop when standard input ends")
	verbose := fs.Bool("v", false, "log every status query and ignored frame")
	if err := parseFlags(fs, args, lockerHelp, std.out); err != nil {
		return err
	}
	switch {
	case *link == "":
		return usageError{"--pty-link is required"}
	case *doors < 1 || *doors > lockersim.Most:
		return usageError{fmt.Sprintf("--doors is 1 to %d", lockersim.Most)}
	case *baud < 0:
		return usageError{"--baud cannot be negative"}
	case *pop < 0:
		return usageError{"--pop-delay cannot be negative"}
	}

	log := simLog(std.err, *verbose)
	c := &lockerConsole{
		sim:  lockersim.New(lockersim.Options{Doors: *doors, Baud: *baud, PopDelay: *pop, Log: log}),
		baud: *baud,
		out:  std.out,
	}
	pty, err := firmwaresim.OpenPTY(*link)
	if err != nil {
		return err
	}
	defer pty.Close()
	c.pty = pty
	fmt.Fprintln(std.out, pty.Name())
	log.Info("locker simulator ready", "pty", pty.Name(), "link", *link, "baud", *baud, "doors", *doors, "boards", c.sim.Boards())

	err = serveConsole(ctx, std, *exitOnEOF, func(ctx context.Context) error { return c.sim.Serve(ctx, pty) }, c.do)
	log.Info("locker simulator stopped")
	return err
}

// lockerConsole runs the stdin commands.
type lockerConsole struct {
	sim  *lockersim.Sim
	baud int
	pty  *firmwaresim.PTY
	out  io.Writer
}

func (c *lockerConsole) do(line string) (quit bool) {
	f := strings.Fields(line)
	say := func(format string, a ...any) { fmt.Fprintf(c.out, format+"\n", a...) }
	// door parses the command's door number.
	door := func() (int, bool) {
		if len(f) != 2 {
			say("error: %s N (a door, 1 to %d)", f[0], c.sim.Doors())
			return 0, false
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 1 || n > c.sim.Doors() {
			say("error: %s: no door %q (doors 1 to %d)", f[0], f[1], c.sim.Doors())
			return 0, false
		}
		return n, true
	}
	// board parses the command's optional board address; -1 is every board.
	board := func() (int, bool) {
		switch len(f) {
		case 1:
			return -1, true
		case 2:
			b, err := strconv.Atoi(f[1])
			if err == nil && b >= 0 && b < c.sim.Boards() {
				return b, true
			}
		}
		say("error: %s [B] (a board, 0 to %d)", f[0], c.sim.Boards()-1)
		return 0, false
	}
	boardName := func(b int) string {
		if b < 0 {
			return "all boards"
		}
		return fmt.Sprintf("board %d", b)
	}
	switch f[0] {
	case "quit", "exit":
		return true
	case "help":
		say("commands: close N|all · open N · stick N · unstick N · silence [B] · answer [B] · garbage [HEX] · corrupt · status · quit")
	case "close":
		if len(f) == 2 && f[1] == "all" {
			for n := 1; n <= c.sim.Doors(); n++ {
				c.sim.Close(n)
			}
			say("closed all")
			return false
		}
		if n, ok := door(); ok {
			c.sim.Close(n)
			say("closed %d", n)
		}
	case "open":
		if n, ok := door(); ok {
			c.sim.Open(n)
			say("opened %d", n)
		}
	case "stick", "unstick":
		if n, ok := door(); ok {
			c.sim.Stick(n, f[0] == "stick")
			say("%s %d", map[string]string{"stick": "stuck", "unstick": "unstuck"}[f[0]], n)
		}
	case "silence", "answer":
		if b, ok := board(); ok {
			c.sim.SetSilent(b, f[0] == "silence")
			say("%s %s", boardName(b), map[string]string{"silence": "silent", "answer": "answering"}[f[0]])
		}
	case "garbage":
		junk := []byte{0x02, 0xFF}
		if len(f) > 1 {
			b, err := parseHex(strings.Join(f[1:], ""))
			if err != nil || len(b) == 0 {
				say("error: garbage: %v", err)
				return false
			}
			junk = b
		}
		c.sim.InjectGarbage(junk)
		say("garbage armed")
	case "corrupt":
		c.sim.Corrupt()
		say("corrupt armed")
	case "status":
		st := c.sim.State()
		var open, stuck, silent []string
		for i, d := range st.Doors {
			if d.Open {
				open = append(open, strconv.Itoa(i+1))
			}
			if d.Stuck {
				stuck = append(stuck, strconv.Itoa(i+1))
			}
		}
		for b, s := range st.Silent {
			if s {
				silent = append(silent, strconv.Itoa(b))
			}
		}
		list := func(l []string) string {
			if len(l) == 0 {
				return "-"
			}
			return strings.Join(l, ",")
		}
		say("doors=%d boards=%d open=%s stuck=%s silent=%s queries=%d unlocks=%d ignored=%d baud=%d pty=%s",
			len(st.Doors), len(st.Silent), list(open), list(stuck), list(silent), st.Queries, st.Unlocks, st.Ignored, c.baud, c.pty.Name())
	default:
		say("error: unknown command %q (try help)", f[0])
	}
	return false
}
