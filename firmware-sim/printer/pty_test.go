//go:build unix

package printersim_test

import (
	"context"
	"errors"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"onecard/devices"
	"onecard/devices/escpos"
	firmwaresim "onecard/firmware-sim"
	printersim "onecard/firmware-sim/printer"
)

// step bounds every wait, so a broken simulator fails a test instead of
// hanging it.
const step = 10 * time.Second

// rig is the driver on a real serial port (tarm/serial on the pty's
// symlink) and the simulator on the pty's master, at 9600 baud.
type rig struct {
	t    *testing.T
	sim  *printersim.Sim
	link string
	port io.ReadWriteCloser
	drv  *escpos.Printer
	dir  string
}

// answerWithin is how long the driver waits for a status answer in these
// tests: far more than the simulator needs, so that a loaded machine (the
// race detector, packages tested in parallel) does not fail them.
const answerWithin = 2 * time.Second

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	link := filepath.Join(dir, "printer")
	p, err := firmwaresim.OpenPTY(link)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	out := filepath.Join(dir, "receipts")
	sim := printersim.New(printersim.Options{Baud: 9600, Dir: out})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Serve(ctx, p) }()
	r := &rig{t: t, sim: sim, link: link, dir: out}
	r.connect(answerWithin)
	t.Cleanup(func() {
		r.disconnect()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(step):
			t.Error("Serve did not stop")
		}
		p.Close()
	})
	return r
}

// connect opens the port and makes a driver waiting timeout for answers,
// as devices.Port does on each reconnection.
func (r *rig) connect(timeout time.Duration) {
	r.t.Helper()
	r.disconnect()
	port, err := devices.OpenSerial(devices.SerialConfig{Path: r.link, Baud: 9600})
	if err != nil {
		r.t.Fatal(err)
	}
	r.port = port
	r.drv = escpos.New(port, &escpos.Opts{Baud: 9600, Timeout: timeout})
}

func (r *rig) disconnect() {
	if r.drv != nil {
		r.drv.Close()
		r.port.Close()
		r.drv, r.port = nil, nil
	}
}

func ctxStep(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), step)
	t.Cleanup(cancel)
	return ctx
}

// receiptJob is a receipt as billing prints it.
func receiptJob(t *testing.T) []byte {
	t.Helper()
	job, err := new(escpos.Builder).Init().
		Align(escpos.Center).Bold(true).Size(2, 2).Line("物业收费收据").
		Bold(false).Size(1, 1).Line("阳光花园物业服务中心").
		Align(escpos.Left).
		Line("收据号: No.0000123").
		Text("房号: ").Bold(true).Line("3-1-502").Bold(false).
		Line("物业费 2026-01~2026-03").
		Text("合计: ").Size(1, 2).Bold(true).Line("￥1,200.00").Size(1, 1).Bold(false).
		Line("大写: 壹仟贰佰元整").
		Align(escpos.Right).Line("收银员: 张三").
		Align(escpos.Center).QR("https://pay.example/r/0000123", 6, escpos.QRLevelM).
		Feed(1).
		Cut(escpos.PartialCut).
		Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// The .txt of receiptJob, 48 columns: the Chinese characters count two,
// the title four (2×2).
const receiptText = `            {2x2 **物业收费收据**}
              阳光花园物业服务中心
收据号: No.0000123
房号: **3-1-502**
物业费 2026-01~2026-03
合计: {1x2 **￥1,200.00**}
大写: 壹仟贰佰元整
                                    收银员: 张三
      [QR: https://pay.example/r/0000123]

----------------- partial cut ------------------
`

func TestPrintReceiptOverPTY(t *testing.T) {
	r := newRig(t)
	ctx := ctxStep(t)
	if err := r.drv.Print(ctx, receiptJob(t)); err != nil {
		t.Fatal(err)
	}
	got, err := r.sim.WaitReceipts(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	rc := got[0]
	if rc.N != 1 || rc.TextPath != filepath.Join(r.dir, "receipt-0001.txt") || rc.ImagePath != filepath.Join(r.dir, "receipt-0001.png") {
		t.Fatalf("receipt %d at %q, %q", rc.N, rc.TextPath, rc.ImagePath)
	}
	txt, err := os.ReadFile(rc.TextPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(txt) != receiptText {
		t.Errorf("receipt-0001.txt:\n%s\nwant:\n%s", txt, receiptText)
	}
	f, err := os.Open(rc.ImagePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("receipt-0001.png: %v", err)
	}
	if b := img.Bounds(); b.Dx() != printersim.DefaultDots+64 || b.Dy() < 400 {
		t.Errorf("image %v", b)
	}
	if data := scanQR(t, img); data != "https://pay.example/r/0000123" {
		t.Errorf("QR code scans as %q", data)
	}
}

// scanQR decodes the QR code in img, as a phone would.
func scanQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("no QR code found: %v", err)
	}
	return res.GetText()
}

// A printer out of paper gets no job: nothing is printed, nothing waits
// to be; with paper again, the next job prints as receipt 1.
func TestPaperOutOverPTY(t *testing.T) {
	r := newRig(t)
	ctx := ctxStep(t)
	r.sim.SetPaper(printersim.PaperOut)
	err := r.drv.Print(ctx, receiptJob(t))
	if !errors.Is(err, escpos.ErrPaperOut) || errors.Is(err, escpos.ErrCoverOpen) {
		t.Fatalf("Print out of paper: %v", err)
	}
	st, err := r.drv.Status(ctx)
	if err != nil || !st.PaperOut || !st.Offline || !st.PaperStopped || st.CoverOpen {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	// The driver sent only its six queries, 18 bytes waiting in the
	// printer's buffer with nothing to print.
	if s := r.sim.State(); s.Receipts != 0 || s.Answered != 6 || s.Waiting != 18 {
		t.Fatalf("state %+v", s)
	}
	if entries, _ := os.ReadDir(r.dir); len(entries) != 0 {
		t.Fatalf("files written: %v", entries)
	}

	r.sim.SetPaper(printersim.PaperOK)
	if err := r.drv.Print(ctx, receiptJob(t)); err != nil {
		t.Fatal(err)
	}
	got, err := r.sim.WaitReceipts(ctx, 1)
	if err != nil || len(got) != 1 || got[0].N != 1 || got[0].Text != receiptText {
		t.Fatalf("after loading paper: %d receipts, %v", len(got), err)
	}
}

func TestStatusOverPTY(t *testing.T) {
	r := newRig(t)
	ctx := ctxStep(t)
	for _, tc := range []struct {
		paper printersim.Paper
		cover bool
		want  escpos.Status
		ready error
	}{
		{printersim.PaperOK, false, escpos.Status{}, nil},
		{printersim.PaperNearEnd, false, escpos.Status{PaperNearEnd: true}, nil},
		{printersim.PaperOK, true, escpos.Status{Offline: true, CoverOpen: true}, escpos.ErrCoverOpen},
		{printersim.PaperOut, true, escpos.Status{Offline: true, CoverOpen: true, PaperStopped: true, PaperNearEnd: true, PaperOut: true}, escpos.ErrPaperOut},
	} {
		r.sim.SetPaper(tc.paper)
		r.sim.SetCover(tc.cover)
		st, err := r.drv.Status(ctx)
		if err != nil || st != tc.want {
			t.Errorf("paper %v, cover open %t: Status = %+v, %v; want %+v", tc.paper, tc.cover, st, err, tc.want)
		}
		if err := st.Ready(); (tc.ready == nil) != (err == nil) || (tc.ready != nil && !errors.Is(err, tc.ready)) {
			t.Errorf("paper %v, cover open %t: Ready() = %v, want %v", tc.paper, tc.cover, err, tc.ready)
		}
	}
}

// A printer that does not answer gets no job.
func TestNoAnswerOverPTY(t *testing.T) {
	r := newRig(t)
	ctx := ctxStep(t)
	r.connect(300 * time.Millisecond) // no answer is coming anyway
	r.sim.SetMute(true)
	err := r.drv.Print(ctx, receiptJob(t))
	var e *escpos.Error
	if !errors.Is(err, devices.ErrTimeout) || !errors.As(err, &e) || e.Op != "status query 1" {
		t.Fatalf("Print to a silent printer: %v", err)
	}
	// Unmuted, the printer answers and prints again; the job refused was
	// never sent, so there is one receipt.
	r.sim.SetMute(false)
	r.connect(answerWithin)
	if err := r.drv.Print(ctx, receiptJob(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.sim.WaitReceipts(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if s := r.sim.State(); s.Receipts != 1 {
		t.Fatalf("%d receipts", s.Receipts)
	}
}

func TestGarbageOverPTY(t *testing.T) {
	r := newRig(t)
	ctx := ctxStep(t)
	// Answers 12 12 1E: a stale answer taken for the next would lose the
	// near end.
	r.sim.SetPaper(printersim.PaperNearEnd)
	r.sim.InjectGarbage([]byte{0xFF})
	if err := r.drv.Print(ctx, receiptJob(t)); !errors.Is(err, escpos.ErrNotStatus) {
		t.Fatalf("Print after garbage: %v", err)
	}
	// The answer that came after the garbage is not taken for the next
	// query's.
	if st, err := r.drv.Status(ctx); err != nil || st != (escpos.Status{PaperNearEnd: true}) {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if s := r.sim.State(); s.Receipts != 0 {
		t.Fatalf("%d receipts", s.Receipts)
	}
}
