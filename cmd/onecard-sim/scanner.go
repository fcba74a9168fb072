package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	firmwaresim "onecard/firmware-sim"
	scannersim "onecard/firmware-sim/scanner"
)

const scannerHelp = `Usage: onecard-sim scanner --pty-link PATH [flags]

Simulates a barcode scanner on a serial line, in the hands of a desk clerk
scanning couriers' tracking numbers: each code is sent as a line, the code
then CR LF (--suffix), at the pace of a UART at the --baud rate, 8N1, with
--gap after each. PATH becomes a symlink to the pty's slave; open it as the
scanner's serial port. The slave's device path is printed first; then
commands are read on standard input, one a line:

  scan CODE [CODE...]   scan the codes, in order
  file PATH             scan each line of a text file, in order (blank
                        lines and lines starting with # are skipped)
  garbage [HEX]         send raw bytes: by default a line of line noise
                        (8D 0F FF 00 CR LF); with HEX exactly those bytes,
                        e.g. "garbage FF 41 42" (no CR or LF: the start of
                        a line that never ends)
  status                show what is queued and what was sent
  help                  list the commands
  quit                  stop at once, whatever is still queued

Codes are queued and sent one after another; each is logged on standard
error as it goes. When standard input ends with --exit-on-eof, what is
queued is sent before the simulator stops.

Flags:
`

// runScanner is the scanner subcommand.
func runScanner(ctx context.Context, args []string, std stdio) error {
	fs := flag.NewFlagSet("onecard-sim scanner", flag.ContinueOnError)
	link := fs.String("pty-link", "", "`path` of the symlink to the pty's slave (required); a stale symlink there is replaced")
	baud := fs.Int("baud", scannersim.DefaultBaud, "pace the line as a UART at this `rate` would (10 bits a byte); 0 sends at once")
	gap := fs.Duration("gap", 0, "pause after each code, before the next (`time`, e.g. 800ms for a clerk's pace)")
	suffix := fs.String("suffix", "crlf", "what ends each code: `crlf`, cr or lf")
	aim := fs.String("aim", "", "send this AIM symbology `identifier` before each code, e.g. ]C0 (Code 128)")
	exitOnEOF := fs.Bool("exit-on-eof", false, "when standard input ends, send what is queued and stop")
	if err := parseFlags(fs, args, scannerHelp, std.out); err != nil {
		return err
	}
	suffixes := map[string]string{"crlf": "\r\n", "cr": "\r", "lf": "\n"}
	switch {
	case *link == "":
		return usageError{"--pty-link is required"}
	case *baud < 0:
		return usageError{"--baud cannot be negative"}
	case *gap < 0:
		return usageError{"--gap cannot be negative"}
	case suffixes[*suffix] == "":
		return usageError{"--suffix is crlf, cr or lf"}
	case *aim != "" && (len(*aim) != 3 || (*aim)[0] != ']'):
		return usageError{"--aim is ] and two characters, e.g. ]C0"}
	}
	rate := *baud
	if rate == 0 {
		rate = -1 // at once
	}

	log := slog.New(slog.NewTextHandler(std.err, nil))
	c := &scannerConsole{
		sim:  scannersim.New(scannersim.Options{Baud: rate, Gap: *gap, Prefix: *aim, Suffix: suffixes[*suffix], Log: log}),
		baud: *baud,
		out:  std.out,
	}
	pty, err := firmwaresim.OpenPTY(*link)
	if err != nil {
		return err
	}
	defer pty.Close()
	c.pty = pty
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	serving := make(chan struct{})
	go func() {
		defer close(serving)
		served <- c.sim.Serve(sctx, pty)
	}()
	fmt.Fprintln(std.out, pty.Name())
	log.Info("scanner simulator ready", "pty", pty.Name(), "link", *link, "baud", *baud, "suffix", *suffix, "gap", *gap)

	err = console(ctx, std.in, *exitOnEOF, served, c.do)
	if err == nil && !c.quit && ctx.Err() == nil {
		// Input ended (--exit-on-eof): send what is queued first, unless a
		// signal comes or Serve fails meanwhile.
		wctx, wcancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-serving:
				wcancel()
			case <-wctx.Done():
			}
		}()
		c.sim.Wait(wctx)
		wcancel()
	}
	cancel()
	if err == nil {
		// Serve ends at once: the pty has deadlines.
		<-serving
		select {
		case serr := <-served:
			if serr != nil && !errors.Is(serr, context.Canceled) {
				err = serr
			}
		default: // console took it
		}
	}
	log.Info("scanner simulator stopped")
	return err
}

// scannerConsole runs the stdin commands.
type scannerConsole struct {
	sim  *scannersim.Sim
	baud int
	pty  *firmwaresim.PTY
	out  io.Writer
	quit bool
}

// noise is the default garbage: a line of bytes no scanner sends.
var noise = []byte{0x8D, 0x0F, 0xFF, 0x00, '\r', '\n'}

func (c *scannerConsole) do(line string) (quit bool) {
	f := strings.Fields(line)
	say := func(format string, a ...any) { fmt.Fprintf(c.out, format+"\n", a...) }
	switch f[0] {
	case "quit", "exit":
		c.quit = true
		return true
	case "help":
		say("commands: scan CODE [CODE...] · file PATH · garbage [HEX] · status · quit")
	case "scan":
		if len(f) < 2 {
			say("error: scan CODE [CODE...]")
			return false
		}
		c.sim.Scan(f[1:]...)
		say("queued %d", len(f)-1)
	case "file":
		if len(f) != 2 {
			say("error: file PATH")
			return false
		}
		codes, err := readCodes(f[1])
		if err != nil {
			say("error: file: %v", err)
			return false
		}
		c.sim.Scan(codes...)
		say("queued %d from %s", len(codes), f[1])
	case "garbage":
		junk := noise
		if len(f) > 1 {
			b, err := parseHex(strings.Join(f[1:], ""))
			if err != nil {
				say("error: garbage: %v", err)
				return false
			}
			junk = b
		}
		c.sim.InjectGarbage(junk)
		say("garbage queued (%d bytes)", len(junk))
	case "status":
		st := c.sim.State()
		say("queued=%d scanned=%d garbage=%d baud=%d pty=%s", st.Queued, st.Scanned, st.Garbage, c.baud, c.pty.Name())
	default:
		say("error: unknown command %q (try help)", f[0])
	}
	return false
}

// readCodes reads a file of codes, one a line.
func readCodes(path string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var codes []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		codes = append(codes, l)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return codes, nil
}
