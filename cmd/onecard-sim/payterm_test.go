package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onecard/devices"
	"onecard/devices/payterm"
)

func TestPaytermUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  []string // in stdout, or stderr when code ≠ 0
	}{
		{[]string{"--help"}, 0, []string{"payterm", "docs/payterm.md"}},
		{[]string{"payterm", "--help"}, 0, []string{"--pty-link", "decline [CODE [TEXT]]", "powerloss [DURATION]", "garbage", "delay DURATION", "journal", "-journal", "-reboot", "quit"}},
		{[]string{"payterm"}, 2, []string{"--pty-link is required"}},
		{[]string{"payterm", "--pty-link", "x", "--delay", "-1s"}, 2, []string{"--delay"}},
		{[]string{"payterm", "--pty-link", "x", "--reboot", "0"}, 2, []string{"--reboot"}},
		{[]string{"payterm", "--pty-link", "x", "--journal-size", "0"}, 2, []string{"--journal-size"}},
		{[]string{"payterm", "--pty-link", "x", "extra"}, 2, []string{`unexpected argument "extra"`}},
		{[]string{"payterm", "--bogus"}, 2, []string{"bogus"}},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, strings.NewReader(""), &out, &errOut)
		text := out.String()
		if code != 0 {
			text = errOut.String()
		}
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d\n%s%s", tc.args, code, tc.code, out.String(), errOut.String())
		}
		for _, w := range tc.out {
			if !strings.Contains(text, w) {
				t.Errorf("%q: output lacks %q:\n%s", tc.args, w, text)
			}
		}
	}
	// A journal that cannot be read is a failure, not a usage error.
	bad := filepath.Join(t.TempDir(), "journal.json")
	os.WriteFile(bad, []byte("{"), 0o600)
	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"payterm", "--pty-link", filepath.Join(t.TempDir(), "p"), "--journal", bad}, strings.NewReader(""), io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "journal") {
		t.Errorf("corrupt journal: exit %d: %s", code, errOut.String())
	}
}

// TestPaytermConsole drives the commands in process.
func TestPaytermConsole(t *testing.T) {
	link := filepath.Join(t.TempDir(), "payterm")
	inW, _, done, say := startConsole(t, link, "payterm", "--pty-link", link, "--baud", "0")
	checkSays(t, say, []consoleCase{
		{"status", "mode=approve delay=200ms sale=- off=false journal=0/500 charges=0 batch=1 baud=0 pty=/dev/"},
		{"decline", "mode decline 05"},
		{"decline 51", "mode decline 51"},
		{"decline 51 余额不足", "mode decline 51"},
		{"decline x", "error: decline:"},
		{"timeout", "mode timeout"},
		{"powerloss", "mode powerloss (next sale only)"},
		{"powerloss 2s", "mode powerloss"},
		{"powerloss soon", "error: powerloss"},
		{"garbage", "mode garbage"},
		{"approve", "mode approve"},
		{"delay 0", "delay 0s"},
		{"delay 1.5s", "delay 1.5s"},
		{"delay -1s", "error: delay"},
		{"delay", "error: delay"},
		{"drop", "dropping the next 1 requests"},
		{"drop 3", "dropping the next 3 requests"},
		{"drop many", "error: drop"},
		{"status", "mode=approve delay=1.5s"},
		{"journal", "journal: 0 of 500"},
		{"fly", `error: unknown command "fly"`},
		{"help", "commands: approve"},
	})
	quitConsole(t, inW, done)
	checkLinkGone(t, link)
}

// openTerminal opens the simulator's link with the driver.
func openTerminal(t *testing.T, link string, o payterm.Opts) *payterm.Terminal {
	t.Helper()
	port, err := devices.OpenSerial(devices.SerialConfig{Path: link})
	if err != nil {
		t.Fatal(err)
	}
	term := payterm.New(port, &o)
	t.Cleanup(func() {
		term.Close()
		port.Close()
	})
	return term
}

var paytermOpts = payterm.Opts{
	AckTimeout:    200 * time.Millisecond,
	SaleTimeout:   wait,
	QueryTries:    40,
	QueryInterval: 100 * time.Millisecond,
}

// The simulator as a process: the driver sells on its pty, console
// commands change what the terminal does, and the journal file outlives
// the process.
func TestPaytermProcess(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "payterm")
	journal := filepath.Join(dir, "journal.json")
	ctx, cancel := context.WithTimeout(context.Background(), 6*wait)
	defer cancel()

	cmd, stdin, out, exited := startSim(t, true, "payterm", "--pty-link", link, "--journal", journal, "--delay", "20ms", "--reboot", "500ms")
	defer stdin.Close()
	term := openTerminal(t, link, paytermOpts)
	a, err := term.Sale(ctx, "PROC-1", 12000)
	if err != nil || a.State != payterm.Approved {
		t.Fatalf("Sale = %+v, %v", a, err)
	}

	// Power lost after approving: the driver's queries find the approval.
	io.WriteString(stdin, "powerloss\n")
	if got := next(t, out); got != "mode powerloss (next sale only)" {
		t.Fatalf("powerloss: %q", got)
	}
	opts := paytermOpts
	opts.SaleTimeout = 300 * time.Millisecond
	p, err := openTerminal(t, link, opts).Sale(ctx, "PROC-2", 500)
	if err != nil || p.State != payterm.Approved {
		t.Fatalf("Sale across the power loss = %+v, %v", p, err)
	}

	io.WriteString(stdin, "journal\n")
	if got := next(t, out); got != "journal: 2 of 500" {
		t.Fatalf("journal: %q", got)
	}
	for _, want := range []string{"PROC-1 12000 fen approved auth=" + a.Auth, "PROC-2 500 fen approved auth=" + p.Auth} {
		if got := next(t, out); !strings.HasPrefix(got, "  "+want) {
			t.Errorf("journal line %q, want %q…", got, want)
		}
	}

	terminate(t, cmd, exited)
	checkLinkGone(t, link)

	// A new process on the same journal knows both sales.
	startSim(t, false, "payterm", "--pty-link", link, "--journal", journal)
	term = openTerminal(t, link, paytermOpts)
	for _, want := range []payterm.Result{a, p} {
		q, err := term.Query(ctx, want.Ref)
		if err != nil || q != want {
			t.Errorf("Query after the restart = %+v, %v\nwant %+v", q, err, want)
		}
	}
	again, err := term.Sale(ctx, "PROC-1", 12000)
	if err != nil || again != a {
		t.Errorf("Sale again after the restart = %+v, %v", again, err)
	}
}
