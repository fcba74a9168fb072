package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"onecard/devices"
	"onecard/devices/scanner"
)

func TestScannerUsage(t *testing.T) {
	checkUsage(t, []usageCase{
		{[]string{"--help"}, 0, "scanner"},
		{[]string{"scanner", "--help"}, 0, "scan CODE [CODE...]"},
		{[]string{"scanner", "--help"}, 0, "-suffix crlf"},
		{[]string{"scanner"}, 2, "--pty-link is required"},
		{[]string{"scanner", "--pty-link", "x", "--baud", "-1"}, 2, "--baud cannot be negative"},
		{[]string{"scanner", "--pty-link", "x", "--gap", "-1s"}, 2, "--gap cannot be negative"},
		{[]string{"scanner", "--pty-link", "x", "--suffix", "tab"}, 2, "--suffix is crlf, cr or lf"},
		{[]string{"scanner", "--pty-link", "x", "--aim", "C0"}, 2, "--aim is ]"},
		{[]string{"scanner", "--pty-link", "x", "extra"}, 2, `unexpected argument "extra"`},
	})
}

// openScanner opens the scanner's port at 9600 baud and puts the driver
// on it.
func openScanner(t *testing.T, link string) *scanner.Scanner {
	t.Helper()
	port, err := devices.OpenSerial(devices.SerialConfig{Path: link, Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	sc := scanner.New(port, nil)
	t.Cleanup(func() {
		sc.Close()
		port.Close()
	})
	return sc
}

// scanned takes the next line from the driver: the code, or "rejected:
// <cause>".
func scanned(t *testing.T, sc *scanner.Scanner) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := sc.Next(ctx)
	var le *scanner.LineError
	switch {
	case errors.As(err, &le):
		return "rejected: " + le.Err.Error()
	case err != nil:
		t.Fatalf("Next: %v", err)
	}
	return s.Code
}

// TestScannerConsole drives the commands in process, with the driver on
// the pty.
func TestScannerConsole(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "scanner")
	batch := filepath.Join(dir, "batch.txt")
	if err := os.WriteFile(batch, []byte("# Monday's parcels\nYT1234567890\r\n\n  jd0001234567 \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inW, _, done, say := startConsole(t, link, "scanner", "--pty-link", link, "--baud", "0")
	sc := openScanner(t, link)
	for _, tc := range []struct {
		cmd, want string
		got       []string // what the driver then reads
	}{
		{"scan SF1234567890123 1Z999AA10123456784", "queued 2", []string{"SF1234567890123", "1Z999AA10123456784"}},
		{"file " + batch, "queued 2 from " + batch, []string{"YT1234567890", "jd0001234567"}},
		{"garbage", "garbage queued (6 bytes)", []string{"rejected: not UTF-8"}},
		{"garbage 41 42 0D", "garbage queued (3 bytes)", []string{"AB"}},
		{"garbage 1B 41 0A", "garbage queued (3 bytes)", []string{"rejected: control character"}},
		{"garbage zz", "error: garbage: not hex", nil},
		{"scan", "error: scan CODE [CODE...]", nil},
		{"file", "error: file PATH", nil},
		{"file " + filepath.Join(dir, "none.txt"), "error: file: open ", nil},
		{"fly", `error: unknown command "fly"`, nil},
		{"help", "commands: scan CODE [CODE...]", nil},
	} {
		if got := say(tc.cmd); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want %q…", tc.cmd, got, tc.want)
		}
		for _, w := range tc.got {
			if got := scanned(t, sc); !strings.HasPrefix(got, w) {
				t.Errorf("%s: the driver read %q, want %q", tc.cmd, got, w)
			}
		}
	}
	// Everything was read, so everything was sent: the counts are final
	// once the simulator has noted the last write.
	want := "queued=0 scanned=4 garbage=12 baud=0 pty=/dev/"
	for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
		got := say("status")
		if strings.HasPrefix(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status: %q, want %q…", got, want)
		}
	}
	quitConsole(t, inW, done)
	checkLinkGone(t, link)
}

// syncBuffer is a bytes.Buffer for a logger written from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// With --exit-on-eof, codes queued before the end of input are sent
// before the simulator stops, at their pace.
func TestScannerExitOnEOF(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner")
	var logs syncBuffer
	in := strings.NewReader("scan SF1001 SF1002 SF1003\n")
	code := run(context.Background(), []string{"scanner", "--pty-link", link, "--gap", "50ms", "--exit-on-eof"}, in, io.Discard, &logs)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, logs.String())
	}
	text := logs.String()
	for _, c := range []string{"SF1001", "SF1002", "SF1003"} {
		if !strings.Contains(text, "scannersim: scanned\" code="+c) {
			t.Errorf("%s not sent:\n%s", c, text)
		}
	}
}

// onecard-sim scanner in a process of its own, with the driver on the
// symlink at 9600 baud: codes said on stdin arrive, garbage is rejected
// and the next code still comes; SIGTERM stops it.
func TestProcessScanner(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner")
	cmd, stdin, out, exited := startSim(t, true, "scanner", "--pty-link", link, "--aim", "]C0")
	defer stdin.Close()
	port, err := devices.OpenSerial(devices.SerialConfig{Path: link, Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	sc := scanner.New(port, &scanner.Opts{AIM: true})
	defer sc.Close()

	io.WriteString(stdin, "scan ｓｆ１２３４５６７８９０１２３ 1Z999AA10123456784\n")
	if got := next(t, out); got != "queued 2" {
		t.Fatalf("scan: %q", got)
	}
	io.WriteString(stdin, "garbage\nscan 773-1234-5678\n")
	next(t, out)
	next(t, out)
	for _, want := range []string{"SF1234567890123", "1Z999AA10123456784", "rejected: not UTF-8", "773-1234-5678"} {
		got := scanned(t, sc)
		if n := scanner.Normalize(got); n != want && !strings.HasPrefix(got, want) {
			t.Fatalf("the driver read %q, want %q", got, want)
		}
	}

	terminate(t, cmd, exited)
	checkLinkGone(t, link)
}
