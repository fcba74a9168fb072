package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	firmwaresim "onecard/firmware-sim"
	paytermsim "onecard/firmware-sim/payterm"
)

const paytermHelp = `Usage: onecard-sim payterm --pty-link PATH [flags]

Simulates the bank-card payment terminal: a terminal speaking onecard's
framed protocol (docs/payterm.md) on a new pty, with a journal of its sales.
PATH becomes a symlink to the pty's slave; open it as the terminal's serial
port. The slave's device path is printed first; then commands are read on
standard input, one a line. A mode applies to the sales to come and stays
until another is set (powerloss: one sale).

  approve                 approve the sales (the default); a customer kept
                          waiting by timeout taps the card now
  decline [CODE [TEXT]]   decline them with reason CODE (default 05, do not
                          honour), e.g. "decline 51" (insufficient funds)
  timeout                 the customer never taps: the sale stays in
                          progress until another mode is set or the host
                          cancels it
  powerloss [DURATION]    approve the next sale and record it, then lose
                          power: nothing is sent, every frame ignored for
                          DURATION (default --reboot), then the terminal
                          answers queries from its journal
  garbage                 break the transmit line: everything the terminal
                          sends is random bytes; sales are still approved
  delay DURATION          the customer delay before the card, e.g. 5s or 0
  drop [N]                ignore the next N requests (default 1): no ACK,
                          nothing recorded
  journal                 list the journal, oldest first
  status                  show the mode and the terminal
  help                    list the commands
  quit                    stop

Flags:
`

// runPayterm is the payterm subcommand.
func runPayterm(ctx context.Context, args []string, std stdio) error {
	fs := flag.NewFlagSet("onecard-sim payterm", flag.ContinueOnError)
	link := fs.String("pty-link", "", "`path` of the symlink to the pty's slave (required); a stale symlink there is replaced")
	baud := fs.Int("baud", 115200, "pace output as a UART at this `rate` would (10 bits a byte); 0 sends at once")
	journal := fs.String("journal", "", "keep the journal in this `file` (JSON), so that it survives a restart; default in memory")
	size := fs.Int("journal-size", paytermsim.DefaultJournalSize, "how many `sales` the journal keeps")
	delay := fs.Duration("delay", paytermsim.DefaultDelay, "customer delay: `time` from the SALE to the card; 0 for benchmarks")
	reboot := fs.Duration("reboot", paytermsim.DefaultReboot, "how long a power loss keeps the terminal silent (`time`)")
	exitOnEOF := fs.Bool("exit-on-eof", false, "stop when standard input ends")
	verbose := fs.Bool("v", false, "log every frame")
	if err := parseFlags(fs, args, paytermHelp, std.out); err != nil {
		return err
	}
	switch {
	case *link == "":
		return usageError{"--pty-link is required"}
	case *baud < 0:
		return usageError{"--baud cannot be negative"}
	case *delay < 0:
		return usageError{"--delay cannot be negative"}
	case *reboot <= 0:
		return usageError{"--reboot must be positive"}
	case *size < 1 || *size > 0xFFFF:
		return usageError{"--journal-size must be 1 to 65535"}
	}

	log := simLog(std.err, *verbose)
	sim, err := paytermsim.New(paytermsim.Options{
		Baud: *baud, Delay: *delay, Reboot: *reboot,
		JournalFile: *journal, JournalSize: *size, Log: log,
	})
	if err != nil {
		return err
	}
	pty, err := firmwaresim.OpenPTY(*link)
	if err != nil {
		return err
	}
	defer pty.Close()
	c := &paytermConsole{sim: sim, pty: pty, baud: *baud, size: *size, out: std.out}
	fmt.Fprintln(std.out, pty.Name())
	log.Info("payment terminal simulator ready", "pty", pty.Name(), "link", *link, "baud", *baud, "journal", *journal, "delay", *delay)

	err = serveConsole(ctx, std, *exitOnEOF, func(ctx context.Context) error { return sim.Serve(ctx, pty) }, c.do)
	log.Info("payment terminal simulator stopped")
	return err
}

// paytermConsole runs the stdin commands.
type paytermConsole struct {
	sim  *paytermsim.Sim
	pty  *firmwaresim.PTY
	baud int
	size int
	out  io.Writer
}

func (c *paytermConsole) do(line string) (quit bool) {
	f := strings.Fields(line)
	say := func(format string, a ...any) { fmt.Fprintf(c.out, format+"\n", a...) }
	duration := func(args []string) (time.Duration, bool) {
		if len(args) != 1 {
			return 0, false
		}
		d, err := time.ParseDuration(args[0])
		if err != nil && args[0] == "0" {
			d, err = 0, nil
		}
		return d, err == nil && d >= 0
	}
	switch f[0] {
	case "quit", "exit":
		return true
	case "help":
		say("commands: approve · decline [CODE [TEXT]] · timeout · powerloss [DURATION] · garbage · delay DURATION · drop [N] · journal · status · quit")
	case "approve":
		c.sim.Approve()
		say("mode approve")
	case "decline":
		code, text := "", ""
		if len(f) > 1 {
			code = f[1]
		}
		if len(f) > 2 {
			text = strings.Join(f[2:], " ")
		}
		if err := c.sim.Decline(code, text); err != nil {
			say("error: decline: %v", err)
			return false
		}
		st := c.sim.Status()
		say("mode decline %s", st.Reason)
	case "timeout":
		c.sim.Timeout()
		say("mode timeout")
	case "powerloss":
		var d time.Duration
		if len(f) > 1 {
			var ok bool
			if d, ok = duration(f[1:]); !ok || d == 0 {
				say("error: powerloss: want a positive duration, e.g. 10s")
				return false
			}
		}
		c.sim.PowerLoss(d)
		say("mode powerloss (next sale only)")
	case "garbage":
		c.sim.Garbage()
		say("mode garbage")
	case "delay":
		d, ok := duration(f[1:])
		if !ok {
			say("error: delay: want a duration, e.g. 2s or 0")
			return false
		}
		c.sim.SetDelay(d)
		say("delay %v", d)
	case "drop":
		n := 1
		if len(f) > 1 {
			var err error
			if n, err = strconv.Atoi(f[1]); err != nil || n < 0 || len(f) > 2 {
				say("error: drop: want a count")
				return false
			}
		}
		c.sim.DropRequests(n)
		say("dropping the next %d requests", n)
	case "journal":
		j := c.sim.Journal()
		say("journal: %d of %d", len(j), c.size)
		for _, e := range j {
			say("  %s", entryLine(e))
		}
	case "status":
		st := c.sim.Status()
		sale := st.Ref
		if sale == "" {
			sale = "-"
		}
		say("mode=%s delay=%v sale=%s off=%t journal=%d/%d charges=%d batch=%d baud=%d pty=%s",
			st.Mode, st.Delay, sale, st.Off, st.Journal, c.size, st.Charges, st.Batch, c.baud, c.pty.Name())
	default:
		say("error: unknown command %q (try help)", f[0])
	}
	return false
}

// entryLine shows a journal entry on one line.
func entryLine(e paytermsim.Entry) string {
	s := fmt.Sprintf("%s %d fen %s", e.Ref, e.Amount, e.State)
	switch e.State {
	case paytermsim.Approved, paytermsim.Voided:
		s += fmt.Sprintf(" auth=%s %v *%s trace=%06d batch=%06d %s", e.Auth, e.Scheme, e.Last4, e.Trace, e.Batch, e.Time.UTC().Format(time.RFC3339))
		if e.State == paytermsim.Voided {
			s += fmt.Sprintf(" void-trace=%06d %s", e.VoidTrace, e.VoidTime.UTC().Format(time.RFC3339))
		}
	case paytermsim.Declined:
		s += fmt.Sprintf(" reason=%s %q %s", e.Reason, e.Text, e.Time.UTC().Format(time.RFC3339))
	}
	return s
}
