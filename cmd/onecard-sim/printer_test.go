package main

import (
	"context"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onecard/devices"
	"onecard/devices/escpos"
)

func TestPrinterUsage(t *testing.T) {
	checkUsage(t, []usageCase{
		{[]string{"--help"}, 0, "printer"},
		{[]string{"printer", "--help"}, 0, "cover closed"},
		{[]string{"printer", "--help"}, 0, "-paper mm"},
		{[]string{"printer", "--out", "x"}, 2, "--pty-link is required"},
		{[]string{"printer", "--pty-link", "x"}, 2, "--out is required"},
		{[]string{"printer", "--pty-link", "x", "--out", "y", "--paper", "76"}, 2, "--paper is 80 or 58"},
		{[]string{"printer", "--pty-link", "x", "--out", "y", "--baud", "-1"}, 2, "--baud"},
		{[]string{"printer", "--pty-link", "x", "--out", "y", "extra"}, 2, `unexpected argument "extra"`},
	})
}

// TestPrinterConsole drives the commands in process.
func TestPrinterConsole(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "printer")
	inW, _, done, say := startConsole(t, link, "printer", "--pty-link", link, "--out", filepath.Join(dir, "out"), "--baud", "0", "--paper", "58")
	checkSays(t, say, []consoleCase{
		{"status", "paper=ok cover=closed muted=false online=true waiting=0 answered=0 receipts=0 baud=0 pty=/dev/"},
		{"paper out", "paper out"},
		{"status", "paper=out cover=closed muted=false online=false"},
		{"paper low", "paper low"},
		{"paper ok", "paper ok"},
		{"paper gone", "error: paper out|low|ok"},
		{"cover open", "cover open"},
		{"status", "paper=ok cover=open muted=false online=false"},
		{"cover close", "cover closed"},
		{"cover closed", "cover closed"},
		{"cover ajar", "error: cover open|closed"},
		{"mute", "muted"},
		{"status", "muted=true"},
		{"unmute", "unmuted"},
		{"fault garbage", "fault garbage armed"},
		{"fault garbage 13 37", "fault garbage armed"},
		{"fault garbage zz", "error: fault garbage"},
		{"fault jam", "error: fault garbage [HEX]"},
		{"fly", `error: unknown command "fly"`},
		{"help", "commands: paper out|low|ok"},
	})
	quitConsole(t, inW, done)
	checkLinkGone(t, link)
}

// waitFile waits for a file to appear.
func waitFile(t *testing.T, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never written: %v", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// onecard-sim printer in a process of its own, with the driver on the
// symlink at 9600 baud: a receipt prints as .txt and .png; out of paper
// (said on stdin) the driver refuses the next; SIGTERM stops it.
func TestProcessPrinter(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "printer")
	receipts := filepath.Join(dir, "receipts")
	cmd, stdin, out, exited := startSim(t, true, "printer", "--pty-link", link, "--out", receipts)
	defer stdin.Close()

	port, err := devices.OpenSerial(devices.SerialConfig{Path: link, Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	p := escpos.New(port, &escpos.Opts{Baud: 9600, Timeout: 2 * time.Second}) // ample on a loaded machine
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	job, err := new(escpos.Builder).Init().
		Align(escpos.Center).Bold(true).Size(2, 2).Line("物业收费收据").
		Bold(false).Size(1, 1).Align(escpos.Left).
		Line("房号: 3-1-502").
		Text("合计: ").Bold(true).Line("￥360.00").Bold(false).
		Align(escpos.Center).QR("https://pay.example/r/0000124", 5, escpos.QRLevelQ).
		Cut(escpos.FullCut).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Print(ctx, job); err != nil {
		t.Fatal(err)
	}
	txt := waitFile(t, filepath.Join(receipts, "receipt-0001.txt"))
	want := "            {2x2 **物业收费收据**}\n" +
		"房号: 3-1-502\n" +
		"合计: **￥360.00**\n" +
		"      [QR: https://pay.example/r/0000124]\n" +
		"------------------- full cut -------------------\n"
	if string(txt) != want {
		t.Errorf("receipt-0001.txt:\n%s\nwant:\n%s", txt, want)
	}
	f, err := os.Open(filepath.Join(receipts, "receipt-0001.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() != 576+64 {
		t.Fatalf("receipt-0001.png: %v, %v", img, err)
	}

	io.WriteString(stdin, "paper out\n")
	if got := next(t, out); got != "paper out" {
		t.Fatalf("paper out: %q", got)
	}
	if err := p.Print(ctx, job); !errors.Is(err, escpos.ErrPaperOut) {
		t.Fatalf("Print out of paper: %v", err)
	}
	io.WriteString(stdin, "status\n")
	// Nothing but the three queries (9 bytes) reached the printer.
	if got := next(t, out); !strings.Contains(got, "online=false waiting=9 answered=6 receipts=1") {
		t.Fatalf("status: %q", got)
	}

	terminate(t, cmd, exited)
	checkLinkGone(t, link)
	if _, err := os.Stat(filepath.Join(receipts, "receipt-0002.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a second receipt was printed: %v", err)
	}
}
