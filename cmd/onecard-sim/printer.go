package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	firmwaresim "onecard/firmware-sim"
	printersim "onecard/firmware-sim/printer"
)

const printerHelp = `Usage: onecard-sim printer --pty-link PATH --out DIR [flags]

Simulates a receipt printer: an ESC/POS thermal printer answering on a new
pty, online, with paper and its cover closed. PATH becomes a symlink to the
pty's slave; open it as the printer's serial port, at the --baud rate, 8N1.
Each cut writes DIR/receipt-NNNN.txt (the receipt as text: alignment as
spaces, **bold**, {2x2 size}, [QR: payload]) and DIR/receipt-NNNN.png (the
paper as printed, the QR code scannable), numbered after the receipts
already in DIR. The slave's device path is printed first; then commands are
read on standard input, one a line:

  paper out             the roll runs out: offline, printing stops; what
                        is sent meanwhile waits
  paper low             the roll is nearly used up: prints on, the paper
                        sensor says near end
  paper ok              a new roll: back online, what waited prints
  cover open            open the cover: offline
  cover closed          close it
  mute                  stop answering status queries (DLE EOT), as a
                        printer whose real-time commands are off; prints on
  unmute                answer them again
  fault garbage [HEX]   write bytes before the next status answer
  status                show the printer's state
  help                  list the commands
  quit                  stop

Flags:
`

// runPrinter is the printer subcommand.
func runPrinter(ctx context.Context, args []string, std stdio) error {
	fs := flag.NewFlagSet("onecard-sim printer", flag.ContinueOnError)
	link := fs.String("pty-link", "", "`path` of the symlink to the pty's slave (required); a stale symlink there is replaced")
	out := fs.String("out", "", "`directory` for the receipts (required); created if missing")
	baud := fs.Int("baud", 9600, "pace the line as a UART at this `rate` would (10 bits a byte); 0 sends at once")
	paper := fs.Int("paper", 80, "paper width in `mm`: 80 (576 dots, 48 columns) or 58 (384 dots, 32 columns)")
	exitOnEOF := fs.Bool("exit-on-eof", false, "stop when standard input ends")
	verbose := fs.Bool("v", false, "log every status query and ignored command")
	if err := parseFlags(fs, args, printerHelp, std.out); err != nil {
		return err
	}
	dots := map[int]int{80: 576, 58: 384}[*paper]
	switch {
	case *link == "":
		return usageError{"--pty-link is required"}
	case *out == "":
		return usageError{"--out is required"}
	case *baud < 0:
		return usageError{"--baud cannot be negative"}
	case dots == 0:
		return usageError{"--paper is 80 or 58"}
	}

	log := simLog(std.err, *verbose)
	c := &printerConsole{
		sim:  printersim.New(printersim.Options{Baud: *baud, Dir: *out, Dots: dots, Log: log}),
		baud: *baud,
		dir:  *out,
		out:  std.out,
	}

	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	pty, err := firmwaresim.OpenPTY(*link)
	if err != nil {
		return err
	}
	defer pty.Close()
	c.pty = pty
	fmt.Fprintln(std.out, pty.Name())
	log.Info("printer simulator ready", "pty", pty.Name(), "link", *link, "baud", *baud, "paper_mm", *paper, "out", *out)

	err = serveConsole(ctx, std, *exitOnEOF, func(ctx context.Context) error { return c.sim.Serve(ctx, pty) }, c.do)
	log.Info("printer simulator stopped")
	return err
}

// printerConsole runs the stdin commands.
type printerConsole struct {
	sim  *printersim.Sim
	baud int
	dir  string
	pty  *firmwaresim.PTY
	out  io.Writer
}

func (c *printerConsole) do(line string) (quit bool) {
	f := strings.Fields(line)
	say := func(format string, a ...any) { fmt.Fprintf(c.out, format+"\n", a...) }
	arg := ""
	if len(f) > 1 {
		arg = f[1]
	}
	switch f[0] {
	case "quit", "exit":
		return true
	case "help":
		say("commands: paper out|low|ok · cover open|closed · mute · unmute · fault garbage [HEX] · status · quit")
	case "paper":
		p, ok := map[string]printersim.Paper{"out": printersim.PaperOut, "low": printersim.PaperNearEnd, "ok": printersim.PaperOK}[arg]
		if !ok || len(f) != 2 {
			say("error: paper out|low|ok")
			return false
		}
		c.sim.SetPaper(p)
		say("paper %s", arg)
	case "cover":
		switch {
		case len(f) == 2 && arg == "open":
			c.sim.SetCover(true)
		case len(f) == 2 && (arg == "closed" || arg == "close"):
			c.sim.SetCover(false)
			arg = "closed"
		default:
			say("error: cover open|closed")
			return false
		}
		say("cover %s", arg)
	case "mute":
		c.sim.SetMute(true)
		say("muted: status queries go unanswered")
	case "unmute":
		c.sim.SetMute(false)
		say("unmuted")
	case "fault":
		if arg != "garbage" {
			say("error: fault garbage [HEX]")
			return false
		}
		junk := []byte{0xFF}
		if len(f) > 2 {
			b, err := parseHex(strings.Join(f[2:], ""))
			if err != nil || len(b) == 0 {
				say("error: fault garbage: %v", err)
				return false
			}
			junk = b
		}
		c.sim.InjectGarbage(junk)
		say("fault garbage armed")
	case "status":
		st := c.sim.State()
		cover := "closed"
		if st.CoverOpen {
			cover = "open"
		}
		say("paper=%s cover=%s muted=%t online=%t waiting=%d answered=%d receipts=%d baud=%d pty=%s out=%s",
			st.Paper, cover, st.Muted, st.Online, st.Waiting, st.Answered, st.Receipts, c.baud, c.pty.Name(), c.dir)
	default:
		say("error: unknown command %q (try help)", f[0])
	}
	return false
}
