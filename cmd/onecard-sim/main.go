// Command onecard-sim runs onecard's device simulators on their own, so a
// driver, or onecard serve, can be pointed at them like real hardware. Each
// simulator is a subcommand; see onecard-sim --help.
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
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// stdio is a simulator's console.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// simulator is a subcommand. run returns flag.ErrHelp after printing help,
// and a usageError for bad arguments.
type simulator struct {
	name, summary string
	run           func(ctx context.Context, args []string, std stdio) error
}

// simulators are the subcommands; a printer or a locker board joins here.
var simulators = []simulator{
	{"pn532", "desk card encoder: NXP PN532 over HSU, MIFARE Classic 1K cards", runPN532},
	{"readers", "gate readers over MQTT (docs/mqtt.md), many in one process", runReaders},
	{"printer", "receipt printer: ESC/POS on a pty, receipts written as .txt and .png", runPrinter},
	{"payterm", "bank-card payment terminal, our framed protocol (docs/payterm.md)", runPayterm},
	{"gateway", "online payment gateway for QR-code payments, over HTTP (docs/gateway.md)", runGateway},
	{"locker", "parcel-locker bank: KR-CU16-style lock boards on RS-485, on a pty (docs/locker.md)", runLocker},
	{"scanner", "barcode scanner: codes sent as CR LF-terminated lines on a pty (docs/scanner.md)", runScanner},
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usage(w io.Writer) {
	fmt.Fprint(w, `onecard-sim runs onecard's device simulators on their own: the device side of
each driver, byte-accurate and paced at the configured baud rate, with faults
on demand, so a driver (or onecard serve) runs against it as against the real
hardware.

Usage:
  onecard-sim SIMULATOR [flags]
  onecard-sim SIMULATOR --help

Simulators:
`)
	for _, s := range simulators {
		fmt.Fprintf(w, "  %-8s %s\n", s.name, s.summary)
	}
	fmt.Fprint(w, `
A simulator prints the device path it serves as the first line of its
standard output, then reads commands on standard input, one a line ("help"
lists them). It keeps running when standard input ends (a daemon with stdin
from /dev/null), unless --exit-on-eof; it stops on "quit", SIGINT or SIGTERM,
and removes what it created. Logs go to standard error.

Exit status: 0 when stopped, 1 on failure, 2 on a usage error.
`)
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, s := range simulators {
		if s.name != args[0] {
			continue
		}
		err := s.run(ctx, args[1:], stdio{in: stdin, out: stdout, err: stderr})
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "onecard-sim %s: %v (see onecard-sim %s --help)\n", s.name, err, s.name)
			return 2
		default:
			fmt.Fprintf(stderr, "onecard-sim %s: %v\n", s.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "onecard-sim: no simulator %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errHelp: help was asked for and printed.
var errHelp = errors.New("help printed")

// parseFlags parses a subcommand's args with fs: -h prints help and the
// flags (errHelp); a bad flag or a stray argument is a usageError.
func parseFlags(fs *flag.FlagSet, args []string, help string, out io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(out, help)
			fs.SetOutput(out)
			fs.PrintDefaults()
			return errHelp
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// simLog is a simulator's log on w (standard error); verbose (-v) adds the
// debug lines.
func simLog(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// serveConsole runs a simulator (serve, on its pty) and the stdin console
// together until the console quits, stdin ends (--exit-on-eof) or ctx
// ends. It returns the console's error, or serve's if serve failed (being
// cancelled is how serve ends normally).
func serveConsole(ctx context.Context, std stdio, exitOnEOF bool, serve func(context.Context) error, do func(line string) (quit bool)) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serve(sctx) }()
	err := console(ctx, std.in, exitOnEOF, served, do)
	cancel()
	if err == nil {
		// Serve ends at once: the pty has deadlines.
		if serr := <-served; serr != nil && !errors.Is(serr, context.Canceled) {
			err = serr
		}
	}
	return err
}

// console feeds standard input's lines to do until ctx ends, served reports
// that the simulator stopped, do says quit, or (with exitOnEOF) input ends.
func console(ctx context.Context, in io.Reader, exitOnEOF bool, served <-chan error, do func(line string) (quit bool)) error {
	lines := make(chan string)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-served:
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return nil // ctx ended and serve saw it first
			}
			return err
		case line, ok := <-lines:
			if !ok {
				if exitOnEOF {
					return nil
				}
				lines = nil // keep serving
				continue
			}
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if do(line) {
				return nil
			}
		}
	}
}
