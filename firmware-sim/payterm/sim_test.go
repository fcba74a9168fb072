package paytermsim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"onecard/devices/payterm"
	paytermsim "onecard/firmware-sim/payterm"
)

// step bounds every wait of the host side, so a broken simulator fails a
// test instead of hanging it.
const step = 2 * time.Second

// host is the driver's end of a net.Pipe, speaking frames by hand.
type host struct {
	t   *testing.T
	c   net.Conn
	rx  []byte
	got int // bytes read in all
	sim *paytermsim.Sim
}

func newHost(t *testing.T, o paytermsim.Options) *host {
	t.Helper()
	sim, err := paytermsim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, sim)
}

func serve(t *testing.T, sim *paytermsim.Sim) *host {
	t.Helper()
	hc, dc := net.Pipe()
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

func (h *host) raw(b []byte) {
	h.t.Helper()
	h.c.SetWriteDeadline(time.Now().Add(step))
	if _, err := h.c.Write(b); err != nil {
		h.t.Fatalf("write % X: %v", b, err)
	}
}

func frame(seq byte, m payterm.Message) []byte {
	b, err := payterm.Marshal(seq, m)
	if err != nil {
		panic(err)
	}
	return b
}

func (h *host) send(seq byte, m payterm.Message) { h.t.Helper(); h.raw(frame(seq, m)) }

// next reads the next frame within d; ok is false if none came.
func (h *host) next(d time.Duration) (f payterm.Frame, raw []byte, ok bool) {
	h.t.Helper()
	end := time.Now().Add(d)
	buf := make([]byte, 512)
	for {
		fr, n, err := payterm.Decode(h.rx)
		if err == nil {
			raw = append([]byte(nil), h.rx[n-len(fr.Body)-payterm.Overhead:n]...)
			h.rx = h.rx[n:]
			return fr, raw, true
		}
		if !errors.Is(err, payterm.ErrIncomplete) {
			h.t.Fatalf("damaged frame from the simulator: %v in % X", err, h.rx)
		}
		h.rx = h.rx[n:]
		h.c.SetReadDeadline(end)
		k, rerr := h.c.Read(buf)
		h.rx = append(h.rx, buf[:k]...)
		h.got += k
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			return payterm.Frame{}, nil, false
		}
		if rerr != nil {
			h.t.Fatalf("read: %v", rerr)
		}
	}
}

// expect reads the next frame and checks its type and SEQ; it returns the
// parsed message.
func (h *host) expect(typ payterm.Type, seq byte) payterm.Message {
	h.t.Helper()
	f, _, ok := h.next(step)
	if !ok {
		h.t.Fatalf("no frame, want %v seq %d", typ, seq)
	}
	if f.Type != typ || f.Seq != seq {
		h.t.Fatalf("got %v seq %d (% X), want %v seq %d", f.Type, f.Seq, f.Body, typ, seq)
	}
	m, err := payterm.Unmarshal(f)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// call sends a request, takes its ACK and returns its answer, ACKed.
func (h *host) call(seq byte, m payterm.Message) payterm.Message {
	h.t.Helper()
	h.send(seq, m)
	h.expect(payterm.TypeACK, seq)
	return h.answer(seq)
}

// answer reads a response with seq and ACKs it.
func (h *host) answer(seq byte) payterm.Message {
	h.t.Helper()
	f, _, ok := h.next(step)
	if !ok {
		h.t.Fatalf("no answer for seq %d", seq)
	}
	if f.Seq != seq || !f.Type.Response() {
		h.t.Fatalf("got %v seq %d, want an answer with seq %d", f.Type, f.Seq, seq)
	}
	h.send(seq, payterm.AckMsg{})
	m, err := payterm.Unmarshal(f)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// silent checks that nothing comes for d.
func (h *host) silent(d time.Duration) {
	h.t.Helper()
	if f, _, ok := h.next(d); ok {
		h.t.Fatalf("got %v seq %d, want silence", f.Type, f.Seq)
	}
}

// Golden exchange: the STATUS of docs/payterm.md, byte for byte.
func TestGoldenStatus(t *testing.T) {
	h := newHost(t, paytermsim.Options{})
	h.raw([]byte{0x02, 0x02, 0x13, 0x01, 0xE4, 0xFD, 0x03})
	if _, raw, ok := h.next(step); !ok || !bytes.Equal(raw, []byte{0x02, 0x02, 0x06, 0x01, 0x18, 0x7B, 0x03}) {
		t.Fatalf("ACK = % X", raw)
	}
	_, raw, _ := h.next(step)
	want := frame(1, payterm.StatusReplyMsg{
		State: payterm.Idle, Batch: 1, JournalSize: paytermsim.DefaultJournalSize,
		Protocol: payterm.ProtocolVersion, Version: paytermsim.DefaultVersion,
	})
	if !bytes.Equal(raw, want) {
		t.Fatalf("STATUS_REPLY = % X\nwant % X", raw, want)
	}
}

func TestSale(t *testing.T) {
	h := newHost(t, paytermsim.Options{})
	h.send(5, payterm.SaleMsg{Ref: "S-1", Amount: 12000})
	h.expect(payterm.TypeACK, 5)
	a, ok := h.answer(5).(payterm.ApprovedMsg)
	if !ok || a.Ref != "S-1" || a.Amount != 12000 || a.Trace != 1 || a.Batch != 1 {
		t.Fatalf("outcome %#v", a)
	}
	h.silent(50 * time.Millisecond) // ACKed: not sent again
	e, _ := h.sim.Entry("S-1")
	if e.State != paytermsim.Approved || e.Auth != a.Auth {
		t.Fatalf("journal %+v", e)
	}
	if q := h.call(6, payterm.QueryMsg{Ref: "S-1"}); q != a {
		t.Fatalf("QUERY = %#v", q)
	}
	// The same SALE with a new SEQ: the same outcome at once, no charge.
	if again := h.call(7, payterm.SaleMsg{Ref: "S-1", Amount: 12000}); again != a {
		t.Fatalf("SALE again = %#v", again)
	}
	if e, ok := h.call(8, payterm.SaleMsg{Ref: "S-1", Amount: 1}).(payterm.ErrorMsg); !ok || e.Code != payterm.CodeRefConflict {
		t.Fatalf("SALE under another amount = %#v", e)
	}
	if nf := h.call(9, payterm.QueryMsg{Ref: "S-2"}); nf != (payterm.NotFoundMsg{Ref: "S-2"}) {
		t.Fatalf("QUERY S-2 = %#v", nf)
	}
	if st := h.sim.Status(); st.Charges != 1 || st.Journal != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestDeclineAndBusy(t *testing.T) {
	h := newHost(t, paytermsim.Options{})
	if err := h.sim.Decline("55", ""); err != nil {
		t.Fatal(err)
	}
	d, ok := h.call(1, payterm.SaleMsg{Ref: "D-1", Amount: 10}).(payterm.DeclinedMsg)
	if !ok || d.Reason != "55" || d.Text != "wrong PIN" {
		t.Fatalf("outcome %#v", d)
	}
	h.sim.Timeout()
	h.send(2, payterm.SaleMsg{Ref: "T-1", Amount: 10})
	h.expect(payterm.TypeACK, 2)
	if b := h.call(3, payterm.SaleMsg{Ref: "T-2", Amount: 10}); b != (payterm.BusyMsg{Ref: "T-2"}) {
		t.Fatalf("second SALE = %#v", b)
	}
	if p := h.call(4, payterm.SaleMsg{Ref: "T-1", Amount: 10}); p != (payterm.InProgressMsg{Ref: "T-1", Amount: 10, Phase: payterm.PhaseWaitCard}) {
		t.Fatalf("the same SALE again = %#v", p)
	}
	if s, ok := h.call(5, payterm.StatusMsg{}).(payterm.StatusReplyMsg); !ok || s.State != payterm.Selling || s.Ref != "T-1" || s.JournalUsed != 2 {
		t.Fatalf("STATUS = %#v", s)
	}
	// CANCEL: its own answer, then the SALE's outcome with the SALE's SEQ.
	c, ok := h.call(6, payterm.CancelMsg{Ref: "T-1"}).(payterm.DeclinedMsg)
	if !ok || c.Reason != payterm.ReasonHostCancel {
		t.Fatalf("CANCEL = %#v", c)
	}
	if o := h.answer(2); o != c {
		t.Fatalf("the SALE's outcome = %#v, want %#v", o, c)
	}
	if again := h.call(7, payterm.CancelMsg{Ref: "T-1"}); again != c {
		t.Fatalf("CANCEL again = %#v", again)
	}
}

func TestVoid(t *testing.T) {
	h := newHost(t, paytermsim.Options{})
	a := h.call(1, payterm.SaleMsg{Ref: "V-1", Amount: 10}).(payterm.ApprovedMsg)
	v, ok := h.call(2, payterm.CancelMsg{Ref: "V-1"}).(payterm.VoidedMsg)
	if !ok || v.ApprovedMsg != a || v.VoidTrace != a.Trace+1 {
		t.Fatalf("CANCEL = %#v", v)
	}
	if q := h.call(3, payterm.QueryMsg{Ref: "V-1"}); q != v {
		t.Fatalf("QUERY = %#v", q)
	}
	if again := h.call(4, payterm.CancelMsg{Ref: "V-1"}); again != v {
		t.Fatalf("CANCEL again = %#v", again)
	}
	if nf := h.call(5, payterm.CancelMsg{Ref: "V-2"}); nf != (payterm.NotFoundMsg{Ref: "V-2"}) {
		t.Fatalf("CANCEL V-2 = %#v", nf)
	}
}

func TestLink(t *testing.T) {
	h := newHost(t, paytermsim.Options{AckTimeout: 50 * time.Millisecond, Retries: 2, Delay: 100 * time.Millisecond})

	// A damaged frame is NAKed with the SEQ it carried. (One with no other
	// 02 byte in it: an 02 inside, such as the LEN of an empty body, starts
	// a false frame when the receiver resynchronises, NAKed too.)
	bad := frame(9, payterm.QueryMsg{Ref: "DAMAGED"})
	bad[6] ^= 0x20
	if n := bytes.Count(bad, []byte{payterm.STX}); n != 1 {
		t.Fatalf("% X has %d STX bytes", bad, n)
	}
	h.raw(bad)
	h.expect(payterm.TypeNAK, 9)

	// A request sent twice (its ACK lost) is ACKed twice, executed once.
	sale := frame(10, payterm.SaleMsg{Ref: "L-1", Amount: 10})
	h.raw(sale)
	h.expect(payterm.TypeACK, 10)
	h.raw(sale)
	h.expect(payterm.TypeACK, 10)
	_, first, _ := h.next(step)

	// Not ACKed, the outcome comes again after the ACK timeout, three
	// times in all; a NAK gets it at once.
	_, second, _ := h.next(step)
	h.send(0, payterm.NakMsg{})
	_, third, _ := h.next(step)
	if !bytes.Equal(first, second) || !bytes.Equal(first, third) {
		t.Fatalf("resends differ:\n% X\n% X\n% X", first, second, third)
	}
	h.silent(200 * time.Millisecond) // given up
	if st := h.sim.Status(); st.Charges != 1 || st.Journal != 1 {
		t.Fatalf("status %+v", st)
	}

	// Not requests, or malformed: ACKed, then refused with a reason.
	for _, tc := range []struct {
		f    payterm.Frame
		code payterm.Code
	}{
		{payterm.Frame{Type: 0x40, Seq: 20}, payterm.CodeUnknownType},
		{payterm.Frame{Type: payterm.TypeNotFound, Seq: 21, Body: []byte{1, 'X'}}, payterm.CodeUnknownType},
		{payterm.Frame{Type: payterm.TypeSale, Seq: 22, Body: []byte{1, 'X', 0, 0, 0, 0, 0, 0, 0, 1, 0x03, 0x48}}, payterm.CodeCurrency},
		{payterm.Frame{Type: payterm.TypeSale, Seq: 23, Body: []byte{1, 'X', 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x9C}}, payterm.CodeBadAmount},
		{payterm.Frame{Type: payterm.TypeQuery, Seq: 24, Body: []byte{1, ' '}}, payterm.CodeBadRef},
		{payterm.Frame{Type: payterm.TypeStatus, Seq: 25, Body: []byte{0}}, payterm.CodeMalformed},
	} {
		b, _ := payterm.Encode(tc.f)
		h.raw(b)
		h.expect(payterm.TypeACK, tc.f.Seq)
		if e, ok := h.answer(tc.f.Seq).(payterm.ErrorMsg); !ok || e.Code != tc.code {
			t.Errorf("% X: %#v, want code %d", b, e, tc.code)
		}
	}
}

func TestDropRequests(t *testing.T) {
	h := newHost(t, paytermsim.Options{})
	h.sim.DropRequests(2)
	h.send(1, payterm.SaleMsg{Ref: "X-1", Amount: 10})
	h.silent(50 * time.Millisecond)
	h.send(1, payterm.SaleMsg{Ref: "X-1", Amount: 10})
	h.silent(50 * time.Millisecond)
	if _, ok := h.sim.Entry("X-1"); ok {
		t.Fatal("a dropped SALE was recorded")
	}
	if a, ok := h.call(1, payterm.SaleMsg{Ref: "X-1", Amount: 10}).(payterm.ApprovedMsg); !ok {
		t.Fatalf("third try = %#v", a)
	}
}

// PowerLoss: the approval is recorded, nothing is sent, every frame is
// ignored while the terminal reboots; then QUERY finds the approval.
func TestPowerLoss(t *testing.T) {
	h := newHost(t, paytermsim.Options{})
	h.sim.PowerLoss(400 * time.Millisecond)
	h.send(1, payterm.SaleMsg{Ref: "P-1", Amount: 10})
	h.expect(payterm.TypeACK, 1)
	h.silent(100 * time.Millisecond)
	e, _ := h.sim.Entry("P-1")
	if e.State != paytermsim.Approved || !h.sim.Status().Off {
		t.Fatalf("journal %+v, status %+v", e, h.sim.Status())
	}
	h.send(2, payterm.QueryMsg{Ref: "P-1"})
	h.silent(100 * time.Millisecond)
	var seq byte = 3
	end := time.Now().Add(step)
	for {
		h.send(seq, payterm.QueryMsg{Ref: "P-1"})
		if f, _, ok := h.next(100 * time.Millisecond); ok {
			if f.Type != payterm.TypeACK || f.Seq != seq {
				t.Fatalf("got %v seq %d", f.Type, f.Seq)
			}
			break
		}
		if time.Now().After(end) {
			t.Fatal("still silent")
		}
		seq++
	}
	if a, ok := h.answer(seq).(payterm.ApprovedMsg); !ok || a.Auth != e.Auth {
		t.Fatalf("QUERY after the reboot = %#v", a)
	}
	if st := h.sim.Status(); st.Mode != paytermsim.Approve || st.Charges != 1 {
		t.Fatalf("status %+v", st)
	}
}

// Garbage mode: random bytes instead of frames. They may hold an STX and
// read as a damaged frame (CI once saw one), never as a good one.
func TestGarbageMode(t *testing.T) {
	h := newHost(t, paytermsim.Options{})
	h.sim.Garbage()
	h.send(1, payterm.StatusMsg{})
	buf := make([]byte, 512)
	for end := time.Now().Add(200 * time.Millisecond); ; {
		h.c.SetReadDeadline(end)
		k, err := h.c.Read(buf)
		h.rx = append(h.rx, buf[:k]...)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	if len(h.rx) == 0 {
		t.Fatal("no garbage either")
	}
	for rest := h.rx; len(rest) > 0; {
		f, n, err := payterm.Decode(rest)
		if err == nil {
			t.Fatalf("a frame came through: %v in % X", f.Type, h.rx)
		}
		if errors.Is(err, payterm.ErrIncomplete) {
			break
		}
		rest = rest[n:]
	}
}

// The journal survives the simulator; a sale cut off by the restart is
// declined (P0); counters go on; the oldest entries go beyond the size.
func TestJournalFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "journal.json")
	o := paytermsim.Options{JournalFile: file, JournalSize: 3}
	sim, err := paytermsim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	h := serve(t, sim)
	a := h.call(1, payterm.SaleMsg{Ref: "J-1", Amount: 10}).(payterm.ApprovedMsg)
	sim.Timeout()
	h.send(2, payterm.SaleMsg{Ref: "J-2", Amount: 20})
	h.expect(payterm.TypeACK, 2)

	again, err := paytermsim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	h2 := serve(t, again)
	if q := h2.call(1, payterm.QueryMsg{Ref: "J-1"}); q != a {
		t.Fatalf("J-1 after the restart = %#v", q)
	}
	if d, ok := h2.call(2, payterm.QueryMsg{Ref: "J-2"}).(payterm.DeclinedMsg); !ok || d.Reason != payterm.ReasonPowerLost {
		t.Fatalf("J-2 after the restart = %#v", d)
	}
	b := h2.call(3, payterm.SaleMsg{Ref: "J-3", Amount: 30}).(payterm.ApprovedMsg)
	if b.Trace != a.Trace+1 {
		t.Fatalf("trace %d after %d", b.Trace, a.Trace)
	}
	h2.call(4, payterm.SaleMsg{Ref: "J-4", Amount: 40})
	if nf := h2.call(5, payterm.QueryMsg{Ref: "J-1"}); nf != (payterm.NotFoundMsg{Ref: "J-1"}) {
		t.Fatalf("J-1 beyond the journal's size = %#v", nf)
	}
	if n := len(again.Journal()); n != 3 {
		t.Fatalf("journal holds %d", n)
	}

	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := paytermsim.New(o); err == nil {
		t.Fatal("a corrupt journal was accepted")
	}
}

// Serve returns when the link fails.
func TestServeReturnsOnLinkFailure(t *testing.T) {
	sim, _ := paytermsim.New(paytermsim.Options{})
	hc, dc := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- sim.Serve(context.Background(), dc) }()
	hc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Errorf("Serve: %v, want io.EOF", err)
		}
	case <-time.After(step):
		t.Fatal("Serve did not return")
	}
	dc.Close()
}
