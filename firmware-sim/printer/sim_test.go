package printersim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onecard/devices/escpos"
	printersim "onecard/firmware-sim/printer"
)

// host is the driver's end of a net.Pipe, speaking bytes by hand to an
// unpaced simulator.
type host struct {
	t   *testing.T
	c   net.Conn
	sim *printersim.Sim
}

func newHost(t *testing.T, o printersim.Options) *host {
	t.Helper()
	hc, dc := net.Pipe()
	sim := printersim.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Serve(ctx, dc) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Serve returned %v, want context.Canceled", err)
			}
		case <-time.After(step):
			t.Error("Serve did not return after cancel")
		}
		hc.Close()
		dc.Close()
	})
	return &host{t: t, c: hc, sim: sim}
}

func (h *host) send(b []byte) {
	h.t.Helper()
	h.c.SetWriteDeadline(time.Now().Add(step))
	if _, err := h.c.Write(b); err != nil {
		h.t.Fatalf("write % X: %v", b, err)
	}
}

// expect reads exactly want.
func (h *host) expect(want ...byte) {
	h.t.Helper()
	got := make([]byte, len(want))
	h.c.SetReadDeadline(time.Now().Add(step))
	if _, err := io.ReadFull(h.c, got); err != nil || !bytes.Equal(got, want) {
		h.t.Fatalf("read % X (%v), want % X", got, err, want)
	}
}

// query sends DLE EOT n and reads the answer.
func (h *host) query(n byte) byte {
	h.t.Helper()
	h.send(escpos.StatusQuery(n))
	b := make([]byte, 1)
	h.c.SetReadDeadline(time.Now().Add(step))
	if _, err := io.ReadFull(h.c, b); err != nil {
		h.t.Fatalf("no answer to DLE EOT %d: %v", n, err)
	}
	return b[0]
}

func (h *host) waitReceipts(n int) []printersim.Receipt {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	got, err := h.sim.WaitReceipts(ctx, n)
	if err != nil {
		h.t.Fatal(err)
	}
	return got
}

// The status bytes a printer answers in each state (Epson's bits).
func TestStatusBytes(t *testing.T) {
	h := newHost(t, printersim.Options{})
	for _, tc := range []struct {
		paper          printersim.Paper
		cover          bool
		a1, a2, a3, a4 byte
	}{
		{printersim.PaperOK, false, 0x12, 0x12, 0x12, 0x12},
		{printersim.PaperNearEnd, false, 0x12, 0x12, 0x12, 0x1E},
		{printersim.PaperOut, false, 0x1A, 0x32, 0x12, 0x7E},
		{printersim.PaperOK, true, 0x1A, 0x16, 0x12, 0x12},
		{printersim.PaperOut, true, 0x1A, 0x36, 0x12, 0x7E},
	} {
		h.sim.SetPaper(tc.paper)
		h.sim.SetCover(tc.cover)
		got := []byte{h.query(1), h.query(2), h.query(3), h.query(4)}
		if want := []byte{tc.a1, tc.a2, tc.a3, tc.a4}; !bytes.Equal(got, want) {
			t.Errorf("paper %v, cover open %t: % X, want % X", tc.paper, tc.cover, got, want)
		}
	}
	// DLE EOT 5 gets no answer: the next byte read answers DLE EOT 1.
	h.sim.SetPaper(printersim.PaperOK)
	h.sim.SetCover(false)
	h.send([]byte{0x10, 0x04, 0x05})
	if b := h.query(1); b != 0x12 {
		t.Fatalf("after DLE EOT 5: %02X", b)
	}
	if s := h.sim.State(); s.Answered != 21 {
		t.Errorf("answered %d", s.Answered)
	}
}

// Offline, the printer answers status queries at once, even in the middle
// of a job, and holds the job until it is back online.
func TestQueryMidJobWhileOffline(t *testing.T) {
	h := newHost(t, printersim.Options{})
	h.sim.SetCover(true)
	h.send([]byte("\x1b@first half, "))
	h.send(escpos.StatusQuery(2)) // inside the line
	h.expect(0x16)
	h.send([]byte("second half\n\x1dVA\x00"))
	// The next byte answers this query: nothing else came back.
	if b := h.query(1); b != 0x1A {
		t.Fatalf("offline answer %02X", b)
	}
	if s := h.sim.State(); s.Receipts != 0 || s.Online || s.Waiting == 0 {
		t.Fatalf("offline: %+v", s)
	}
	h.sim.SetCover(false)
	got := h.waitReceipts(1)
	if want := "first half, second half\n------------------- full cut -------------------\n"; got[0].Text != want {
		t.Fatalf("receipt:\n%s\nwant:\n%s", got[0].Text, want)
	}
}

// A real printer watches every byte for DLE EOT, inside another command's
// data too; the data still reaches the command.
func TestQueryInsideQRData(t *testing.T) {
	h := newHost(t, printersim.Options{})
	// By hand: the Builder refuses such data.
	data := "a\x10\x04\x01b"
	h.send([]byte("\x1b@\x1d(k\x08\x001P0" + data + "\x1d(k\x03\x001Q0\x1dV\x00"))
	h.expect(0x12)
	got := h.waitReceipts(1)
	qr, ok := got[0].Blocks[0].(escpos.QR)
	if !ok || string(qr.Data) != data {
		t.Fatalf("blocks %#v", got[0].Blocks)
	}
	if !strings.Contains(got[0].Text, `[QR: "a\x10\x04\x01b"]`) {
		t.Fatalf("text %q", got[0].Text)
	}
}

func TestMuteAndGarbage(t *testing.T) {
	h := newHost(t, printersim.Options{})
	h.sim.SetMute(true)
	h.send(escpos.StatusQuery(1))
	h.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := h.c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("muted printer answered: %d %v", n, err)
	}
	// Muted, it still prints.
	h.send([]byte("\x1b@muted\n\x1dV\x01"))
	if got := h.waitReceipts(1); !strings.HasPrefix(got[0].Text, "muted\n") {
		t.Fatalf("receipt %q", got[0].Text)
	}
	h.sim.SetMute(false)
	h.sim.InjectGarbage([]byte{0xFF, 0x00})
	h.send(escpos.StatusQuery(1))
	h.expect(0xFF, 0x00, 0x12)
	if b := h.query(4); b != 0x12 { // once only
		t.Fatalf("answer %02X", b)
	}
}

// Receipts are numbered after those already in the directory, and each
// is written whole: text and image.
func TestReceiptFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"receipt-0041.txt", "receipt-0007.txt", "receipt-9.png", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := newHost(t, printersim.Options{Dir: dir, Dots: 384})
	h.send([]byte("\x1b@58 mm\n\x1dVB\x00\x1b@two\n\x1dV1"))
	got := h.waitReceipts(2)
	for i, r := range got {
		n := 42 + i
		if r.N != n {
			t.Errorf("receipt %d numbered %d", i, r.N)
		}
		txt, err := os.ReadFile(filepath.Join(dir, "receipt-00"+itoa(n)+".txt"))
		if err != nil || string(txt) != r.Text {
			t.Errorf("receipt %d: %q, %v", n, txt, err)
		}
		if _, err := os.Stat(r.ImagePath); err != nil {
			t.Errorf("receipt %d image: %v", n, err)
		}
	}
	// 58 mm: 32 columns.
	if want := "58 mm\n--------- partial cut ----------\n"; got[0].Text != want {
		t.Errorf("58 mm receipt:\n%s\nwant:\n%s", got[0].Text, want)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func itoa(n int) string { return string(rune('0'+n/10)) + string(rune('0'+n%10)) }
