package printing_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"onecard/billing"
	"onecard/devices/escpos"
	firmwaresim "onecard/firmware-sim"
	printersim "onecard/firmware-sim/printer"
	"onecard/printing"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startPrinter runs the printer simulator on a pty and the printer over it,
// as onecard serve does with a real one.
func startPrinter(t *testing.T) (*printersim.Sim, *printing.Printer) {
	t.Helper()
	dir := t.TempDir()
	pty, err := firmwaresim.OpenPTY(dir + "/printer.pty")
	if err != nil {
		t.Fatal(err)
	}
	sim := printersim.New(printersim.Options{Baud: 115200, Dir: dir + "/out", Log: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sim.Serve(ctx, pty) }()
	p := printing.Open(ctx, dir+"/printer.pty", 115200, quiet)
	t.Cleanup(func() { cancel(); <-done; pty.Close() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := p.Status(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the printer never connected")
		}
	}
	return sim, p
}

func TestReceiptReachesThePaper(t *testing.T) {
	sim, p := startPrinter(t)
	doc := []billing.Line{
		{Text: "翠湖花园", Align: "center", Bold: true},
		{Text: "收款收据", Align: "center", Big: true},
		{Rule: true},
		{Text: "合计: ¥120.00"},
		{Text: "大写: " + billing.Capital(12000), Bold: true},
		{QR: "onecard:receipt:2026-000001", Align: "center"},
		{Cut: true},
	}
	if err := p.Print(context.Background(), doc); err != nil {
		t.Fatal(err)
	}
	var rs []printersim.Receipt
	for deadline := time.Now().Add(10 * time.Second); len(rs) == 0; time.Sleep(20 * time.Millisecond) {
		if rs = sim.Receipts(); time.Now().After(deadline) {
			t.Fatal("nothing printed")
		}
	}
	txt := rs[0].Text
	for _, want := range []string{"翠湖花园", "收款收据", "壹佰贰拾元整", "onecard:receipt:2026-000001"} {
		if !strings.Contains(txt, want) {
			t.Errorf("printed text lacks %q:\n%s", want, txt)
		}
	}
	if _, err := os.Stat(rs[0].ImagePath); err != nil {
		t.Errorf("no image: %v", err)
	}
	sim.SetPaper(printersim.PaperOut)
	err := p.Print(context.Background(), doc)
	if !errors.Is(err, escpos.ErrPaperOut) {
		t.Fatalf("printing without paper: %v", err)
	}
	if n := len(sim.Receipts()); n != 1 {
		t.Fatalf("%d receipts after paper out", n)
	}
}
