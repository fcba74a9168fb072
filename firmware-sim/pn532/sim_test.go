package pn532sim_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"onecard/devices/pn532"
	pn532sim "onecard/firmware-sim/pn532"
)

// step bounds every wait of the host side, so a broken simulator fails a
// test instead of hanging it.
const step = 2 * time.Second

// host is the driver's end of a net.Pipe, speaking frames by hand.
type host struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	sim *pn532sim.Sim
}

func newHost(t *testing.T, o pn532sim.Options) *host {
	t.Helper()
	hc, dc := net.Pipe()
	sim := pn532sim.New(o)
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
	return &host{t: t, c: hc, r: bufio.NewReader(hc), sim: sim}
}

func (h *host) raw(b []byte) {
	h.t.Helper()
	h.c.SetWriteDeadline(time.Now().Add(step))
	if _, err := h.c.Write(b); err != nil {
		h.t.Fatalf("write % X: %v", b, err)
	}
}

func (h *host) send(data ...byte) {
	h.t.Helper()
	f, err := pn532.Encode(pn532.HostToPN532, data)
	if err != nil {
		h.t.Fatal(err)
	}
	h.raw(f)
}

func (h *host) readRaw(n int) []byte {
	h.t.Helper()
	h.c.SetReadDeadline(time.Now().Add(step))
	b := make([]byte, n)
	if _, err := io.ReadFull(h.r, b); err != nil {
		h.t.Fatalf("read %d bytes: %v (got % X)", n, err, b)
	}
	return b
}

func (h *host) frameErr() (pn532.Frame, error) {
	h.c.SetReadDeadline(time.Now().Add(step))
	return pn532.ReadFrame(h.r)
}

func (h *host) frame() pn532.Frame {
	h.t.Helper()
	f, err := h.frameErr()
	if err != nil {
		h.t.Fatalf("read frame: %v", err)
	}
	return f
}

func (h *host) ack() {
	h.t.Helper()
	if f := h.frame(); f.Kind != pn532.Ack {
		h.t.Fatalf("got %v frame % X, want ACK", f.Kind, f.Data)
	}
}

// response reads a response to command code and returns what follows the
// response code.
func (h *host) response(code byte) []byte {
	h.t.Helper()
	f := h.frame()
	if f.Kind != pn532.Normal || f.TFI != pn532.PN532ToHost || len(f.Data) == 0 || f.Data[0] != code+1 {
		h.t.Fatalf("got %v frame TFI %02X % X, want response %02X", f.Kind, f.TFI, f.Data, code+1)
	}
	return f.Data[1:]
}

// call sends a command and returns its response's parameters.
func (h *host) call(data ...byte) []byte {
	h.t.Helper()
	h.send(data...)
	h.ack()
	return h.response(data[0])
}

// rejected: the command is ACKed, then answered with the error frame.
func (h *host) rejected(data ...byte) {
	h.t.Helper()
	h.send(data...)
	h.ack()
	if f := h.frame(); f.Kind != pn532.AppError {
		h.t.Fatalf("% X: got %v % X, want the error frame", data, f.Kind, f.Data)
	}
}

// silent: nothing arrives for d but the postamble of the last frame (or
// preamble bytes, which carry nothing either).
func (h *host) silent(d time.Duration) {
	h.t.Helper()
	h.c.SetReadDeadline(time.Now().Add(d))
	for {
		b, err := h.r.ReadByte()
		switch {
		case err == nil && b == 0x00:
			continue
		case err == nil:
			h.t.Fatalf("got byte %02X, want silence", b)
		case !errors.Is(err, os.ErrDeadlineExceeded):
			h.t.Fatalf("want silence, got %v", err)
		}
		return
	}
}

// list runs InListPassiveTarget and returns the UID found (nil for none).
func (h *host) list() []byte {
	h.t.Helper()
	r := h.call(0x4A, 0x01, 0x00)
	if r[0] == 0 {
		return nil
	}
	if len(r) < 6 || r[0] != 1 || r[1] != 1 || int(r[5]) != len(r)-6 {
		h.t.Fatalf("target data % X", r)
	}
	return r[6:]
}

// exchange sends a MIFARE command to target 1: status and data.
func (h *host) exchange(mifare ...byte) (byte, []byte) {
	h.t.Helper()
	r := h.call(append([]byte{0x40, 0x01}, mifare...)...)
	return r[0], r[1:]
}

func (h *host) auth(block byte, keyB bool, key [6]byte, uid []byte) byte {
	h.t.Helper()
	cmd := byte(0x60)
	if keyB {
		cmd = 0x61
	}
	st, _ := h.exchange(append(append([]byte{cmd, block}, key[:]...), uid[len(uid)-4:]...)...)
	return st
}

func (h *host) read(block byte) (byte, []byte) {
	h.t.Helper()
	return h.exchange(0x30, block)
}

func (h *host) write(block byte, data [16]byte) byte {
	h.t.Helper()
	st, _ := h.exchange(append([]byte{0xA0, block}, data[:]...)...)
	return st
}

// session lists the card and authenticates block's sector.
func (h *host) session(block byte, keyB bool, key [6]byte) byte {
	h.t.Helper()
	uid := h.list()
	if uid == nil {
		h.t.Fatal("no card listed")
	}
	return h.auth(block, keyB, key, uid)
}

var (
	uid4      = []byte{0x04, 0xA1, 0xB2, 0xC3}
	uid7      = []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	transport = [6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	keyA      = [6]byte{0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5}
	keyB      = [6]byte{0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5}
	gfvReq    = []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00}
	gfvResp   = []byte{0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00}
)

// accessBytes encodes C1C2C3 per block (index 3 = trailer) as trailer
// bytes 6–8, per the datasheet's layout.
func accessBytes(cond [4]uint8) [3]byte {
	var c1, c2, c3 byte
	for i, c := range cond {
		c1 |= (c >> 2 & 1) << i
		c2 |= (c >> 1 & 1) << i
		c3 |= (c & 1) << i
	}
	return [3]byte{(^c2&0x0F)<<4 | ^c1&0x0F, c1<<4 | ^c3&0x0F, c3<<4 | c2}
}

func trailer(a [6]byte, access [3]byte, gpb byte, b [6]byte) [16]byte {
	var t [16]byte
	copy(t[0:6], a[:])
	copy(t[6:9], access[:])
	t[9] = gpb
	copy(t[10:16], b[:])
	return t
}

func bytesOf(b [16]byte) []byte { return b[:] }

func pattern(seed byte) [16]byte {
	var b [16]byte
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

func TestGoldenGetFirmwareVersion(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	h.raw(gfvReq)
	got := h.readRaw(len(pn532.ACK) + len(gfvResp))
	if want := append(append([]byte(nil), pn532.ACK...), gfvResp...); !bytes.Equal(got, want) {
		t.Fatalf("got % X\nwant % X", got, want)
	}

	h = newHost(t, pn532sim.Options{Firmware: [4]byte{0x32, 0x01, 0x04, 0x07}})
	if got := h.call(0x02); !bytes.Equal(got, []byte{0x32, 0x01, 0x04, 0x07}) {
		t.Fatalf("custom firmware: % X", got)
	}
}

func TestNewCardTransportState(t *testing.T) {
	c := pn532sim.NewCard(uid4)
	bcc := uid4[0] ^ uid4[1] ^ uid4[2] ^ uid4[3]
	b0 := c.Block(0)
	if want := []byte{0x04, 0xA1, 0xB2, 0xC3, bcc, 0x08, 0x04, 0x00}; !bytes.Equal(b0[:8], want) {
		t.Errorf("block 0 = % X, want % X…", b0, want)
	}
	c7 := pn532sim.NewCard(uid7)
	b0 = c7.Block(0)
	if want := append(append([]byte(nil), uid7...), 0x08, 0x44, 0x00); !bytes.Equal(b0[:10], want) {
		t.Errorf("7-byte block 0 = % X, want % X…", b0, want)
	}
	if !bytes.Equal(c.UID(), uid4) || !bytes.Equal(c7.UID(), uid7) {
		t.Errorf("UIDs % X, % X", c.UID(), c7.UID())
	}
	tt := trailer(transport, [3]byte{0xFF, 0x07, 0x80}, 0x69, transport)
	for n := 1; n < pn532sim.Blocks; n++ {
		want := [16]byte{}
		if n%4 == 3 {
			want = tt
		}
		if got := c.Block(n); got != want {
			t.Errorf("block %d = % X, want % X", n, got, want)
		}
	}
	for s := range pn532sim.Sectors {
		if c.Bricked(s) {
			t.Errorf("sector %d bricked", s)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("NewCard accepted a 5-byte UID")
		}
	}()
	pn532sim.NewCard([]byte{1, 2, 3, 4, 5})
}

func TestConfiguration(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	if r := h.call(0x14, 0x01, 0x14, 0x01); len(r) != 0 {
		t.Errorf("SAMConfiguration answered % X", r)
	}
	if h.sim.Status().Retries != 0xFF {
		t.Errorf("power-on MxRtyPassiveActivation %02X, want FF", h.sim.Status().Retries)
	}
	if r := h.call(0x32, 0x05, 0xFF, 0x01, 0x02); len(r) != 0 {
		t.Errorf("RFConfiguration answered % X", r)
	}
	if got := h.sim.Status().Retries; got != 0x02 {
		t.Errorf("MxRtyPassiveActivation %02X, want 02", got)
	}
	h.call(0x32, 0x01, 0x01)                                                             // RF field on
	h.call(0x32, 0x02, 0x00, 0x0B, 0x0A)                                                 // timings
	h.call(0x32, 0x0A, 0x59, 0xF4, 0x3F, 0x11, 0x4D, 0x85, 0x61, 0x6F, 0x26, 0x62, 0x87) // analog 106A
	for _, bad := range [][]byte{
		{0x14},                   // no mode
		{0x14, 0x05},             // no such mode
		{0x32, 0x05, 0xFF, 0x01}, // short item
		{0x32, 0x07, 0x00},       // no such item
		{0x4A, 0x03, 0x00},       // MaxTg > 2
		{0x4A, 0x01},             // no BrTy
		{0x40, 0x01},             // no data
		{0x52},                   // no Tg
		{0x00, 0x00},             // Diagnose: not simulated
		{0x99},                   // no such command
	} {
		h.rejected(bad...)
	}
	// A frame that is not host-to-PN532 is not a command.
	f, _ := pn532.Encode(pn532.PN532ToHost, []byte{0x02})
	h.raw(f)
	h.ack()
	if f := h.frame(); f.Kind != pn532.AppError {
		t.Errorf("TFI D5 from the host: got %v, want the error frame", f.Kind)
	}
}

func TestListTargets(t *testing.T) {
	for _, tc := range []struct {
		uid  []byte
		want []byte
	}{
		{uid4, []byte{0x01, 0x01, 0x00, 0x04, 0x08, 0x04, 0x04, 0xA1, 0xB2, 0xC3}},
		{uid7, []byte{0x01, 0x01, 0x00, 0x44, 0x08, 0x07, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}},
	} {
		h := newHost(t, pn532sim.Options{})
		h.sim.Place(pn532sim.NewCard(tc.uid))
		if got := h.call(0x4A, 0x01, 0x00); !bytes.Equal(got, tc.want) {
			t.Errorf("list % X: got % X, want % X", tc.uid, got, tc.want)
		}
		if !h.sim.Status().Selected {
			t.Error("target not selected after listing")
		}
		// InitiatorData names the card wanted.
		h.call(0x32, 0x05, 0xFF, 0x01, 0x00)
		if got := h.call(append([]byte{0x4A, 0x01, 0x00}, tc.uid...)...); got[0] != 1 {
			t.Errorf("list by UID % X: % X", tc.uid, got)
		}
		if got := h.call(0x4A, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04); got[0] != 0 {
			t.Errorf("list by another UID: % X", got)
		}
		// Only type A cards are simulated.
		if got := h.call(0x4A, 0x01, 0x03); got[0] != 0 {
			t.Errorf("list type B: % X", got)
		}
	}
}

func TestListWithoutCard(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	h.call(0x32, 0x05, 0xFF, 0x01, 0x02)
	start := time.Now()
	if uid := h.list(); uid != nil {
		t.Fatalf("listed % X on an empty antenna", uid)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("0 targets after %v with 2 retries", d)
	}

	// MxRtyPassiveActivation FF waits until a card is placed.
	h.call(0x32, 0x05, 0xFF, 0x01, 0xFF)
	h.send(0x4A, 0x01, 0x00)
	h.ack()
	h.silent(50 * time.Millisecond)
	h.sim.Place(pn532sim.NewCard(uid4))
	if r := h.response(0x4A); r[0] != 1 || !bytes.Equal(r[6:], uid4) {
		t.Fatalf("after placing: % X", r)
	}
}

func TestHostACKAbortsPendingCommand(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	h.send(0x4A, 0x01, 0x00)
	h.ack()
	h.silent(30 * time.Millisecond)
	h.raw(pn532.ACK)
	h.silent(30 * time.Millisecond)
	h.sim.Place(pn532sim.NewCard(uid4))
	h.silent(50 * time.Millisecond)
	if h.sim.Status().Selected {
		t.Error("the aborted command selected the card")
	}
	h.raw(gfvReq)
	h.ack()
	h.response(0x02)
	// A new command supersedes a pending one, too.
	h.sim.Remove()
	h.send(0x4A, 0x01, 0x00)
	h.ack()
	h.call(0x02)
}

func TestAuth(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	card := pn532sim.NewCard(uid4)

	// No target yet.
	if st, _ := h.read(4); st != 0x27 {
		t.Fatalf("exchange before listing: status %02X, want 27", st)
	}
	h.sim.Place(card)
	if st := h.session(4, false, transport); st != 0 {
		t.Fatalf("transport key A: status %02X", st)
	}
	if st := h.sim.Status(); st.AuthSector != 1 || st.KeyB {
		t.Errorf("status %+v", st)
	}
	if st, d := h.read(5); st != 0 || !bytes.Equal(d, make([]byte, 16)) {
		t.Fatalf("read 5: %02X % X", st, d)
	}
	// Another sector is not authenticated: refused, and the card halts.
	if st, _ := h.read(8); st != 0x14 {
		t.Fatalf("read of an unauthenticated sector: %02X, want 14", st)
	}
	if st, _ := h.read(5); st != 0x01 {
		t.Fatalf("read after a refusal: %02X, want 01 (halted)", st)
	}
	if st := h.auth(4, false, transport, uid4); st != 0x01 {
		t.Fatalf("auth while halted: %02X, want 01", st)
	}
	// Target 2 does not exist.
	h.list()
	if r := h.call(0x40, 0x02, 0x30, 0x04); r[0] != 0x27 {
		t.Errorf("exchange with Tg 2: % X", r)
	}

	for _, tc := range []struct {
		name string
		keyB bool
		key  [6]byte
		uid  []byte
	}{
		{"wrong key A", false, keyA, uid4},
		{"key B readable in transport state", true, transport, uid4},
		{"wrong UID", false, transport, []byte{1, 2, 3, 4}},
	} {
		uid := h.list()
		if uid == nil {
			t.Fatal("card not listed")
		}
		if st := h.auth(4, tc.keyB, tc.key, tc.uid); st != 0x14 {
			t.Errorf("%s: status %02X, want 14", tc.name, st)
		}
		if st, _ := h.read(4); st != 0x01 {
			t.Errorf("%s: read after failed auth %02X, want 01 (halted)", tc.name, st)
		}
		// Listing again wakes it.
		if st := h.session(4, false, transport); st != 0 {
			t.Errorf("%s: auth after relisting %02X", tc.name, st)
		}
	}

	// Key B works where it is not readable.
	card.SetBlock(7, trailer(keyA, [3]byte{0x78, 0x77, 0x88}, 0x69, keyB))
	if st := h.session(4, true, keyB); st != 0 {
		t.Fatalf("key B under 78 77 88: %02X", st)
	}
	if st := h.sim.Status(); st.AuthSector != 1 || !st.KeyB {
		t.Errorf("status %+v", st)
	}
	if st := h.session(4, true, keyA); st != 0x14 {
		t.Fatalf("key A as key B: %02X", st)
	}

	// Lifting the card ends the session.
	h.session(4, false, keyA)
	h.sim.Remove()
	if st, _ := h.read(4); st != 0x01 {
		t.Errorf("read after removal: %02X, want 01", st)
	}
	if h.sim.Card() != nil {
		t.Error("Card() after Remove")
	}
	// InRelease forgets the target.
	h.sim.Place(card)
	h.session(4, false, keyA)
	if r := h.call(0x52, 0x01); !bytes.Equal(r, []byte{0x00}) {
		t.Errorf("InRelease: % X", r)
	}
	if st, _ := h.read(4); st != 0x27 {
		t.Errorf("read after release: %02X, want 27", st)
	}
	if r := h.call(0x52, 0x01); !bytes.Equal(r, []byte{0x27}) {
		t.Errorf("InRelease of no target: % X", r)
	}
	if r := h.call(0x52, 0x00); !bytes.Equal(r, []byte{0x00}) {
		t.Errorf("InRelease all: % X", r)
	}
}

// A 7-byte UID authenticates with its last four bytes.
func TestAuthDoubleSizeUID(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	h.sim.Place(pn532sim.NewCard(uid7))
	if st := h.session(0, false, transport); st != 0 {
		t.Fatalf("last 4 bytes: %02X", st)
	}
	h.list()
	if st := h.auth(0, false, transport, uid7[:4]); st != 0x14 {
		t.Fatalf("first 4 bytes: %02X, want 14", st)
	}
}

// TestIssueLikeTheEncoder walks the card encoder's path: transport state,
// data written, trailer switched to 78 77 88 (data: read A|B, write B;
// trailer: writable with B only), then what each key may do.
func TestIssueLikeTheEncoder(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	card := pn532sim.NewCard(uid4)
	h.sim.Place(card)

	if st := h.session(7, false, transport); st != 0 {
		t.Fatalf("auth: %02X", st)
	}
	if st := h.write(4, pattern(0x10)); st != 0 {
		t.Fatalf("write 4 in transport state: %02X", st)
	}
	if st, d := h.read(4); st != 0 || !bytes.Equal(d, bytesOf(pattern(0x10))) {
		t.Fatalf("read back: %02X % X", st, d)
	}
	// A trailer read in transport state: key A hidden, the rest readable with A.
	if st, d := h.read(7); st != 0 || !bytes.Equal(d, []byte{0, 0, 0, 0, 0, 0, 0xFF, 0x07, 0x80, 0x69, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}) {
		t.Fatalf("read trailer: %02X % X", st, d)
	}
	secure := trailer(keyA, [3]byte{0x78, 0x77, 0x88}, 0x69, keyB)
	if st := h.write(7, secure); st != 0 {
		t.Fatalf("write trailer: %02X", st)
	}
	if got := card.Block(7); got != secure || card.Bricked(1) {
		t.Fatalf("trailer stored % X (bricked %v)", got, card.Bricked(1))
	}

	if st := h.session(4, false, transport); st != 0x14 {
		t.Fatalf("old transport key: %02X, want 14", st)
	}
	// Key A reads, cannot write.
	if st := h.session(4, false, keyA); st != 0 {
		t.Fatalf("key A: %02X", st)
	}
	if st, d := h.read(4); st != 0 || !bytes.Equal(d, bytesOf(pattern(0x10))) {
		t.Fatalf("key A read: %02X % X", st, d)
	}
	if st, d := h.read(7); st != 0 || !bytes.Equal(d, []byte{0, 0, 0, 0, 0, 0, 0x78, 0x77, 0x88, 0x69, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("key A trailer read: %02X % X", st, d)
	}
	if st := h.write(4, pattern(0x20)); st != 0x14 {
		t.Fatalf("key A write: %02X, want 14", st)
	}
	if st := h.session(4, false, keyA); st != 0 {
		t.Fatal(st)
	}
	if st := h.write(7, trailer(transport, [3]byte{0xFF, 0x07, 0x80}, 0x69, transport)); st != 0x14 {
		t.Fatalf("key A trailer write: %02X, want 14", st)
	}
	if got := card.Block(7); got != secure {
		t.Fatalf("trailer changed by key A: % X", got)
	}
	// Key B writes.
	if st := h.session(4, true, keyB); st != 0 {
		t.Fatalf("key B: %02X", st)
	}
	if st := h.write(5, pattern(0x20)); st != 0 {
		t.Fatalf("key B write: %02X", st)
	}
	if st, d := h.read(5); st != 0 || !bytes.Equal(d, bytesOf(pattern(0x20))) {
		t.Fatalf("key B read: %02X % X", st, d)
	}
	if st, d := h.read(7); st != 0 || !bytes.Equal(d, []byte{0, 0, 0, 0, 0, 0, 0x78, 0x77, 0x88, 0x69, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("key B trailer read: %02X % X", st, d)
	}
	// Key B returns the sector to transport state (the card's return path).
	back := trailer(transport, [3]byte{0xFF, 0x07, 0x80}, 0x69, transport)
	if st := h.write(7, back); st != 0 {
		t.Fatalf("key B trailer write: %02X", st)
	}
	if got := card.Block(7); got != back {
		t.Fatalf("trailer after reset: % X", got)
	}
}

// who, for the tables below: which keys may ("", "A", "B", "AB").
func may(who string, withB bool) bool {
	if withB {
		return strings.Contains(who, "B")
	}
	return strings.Contains(who, "A")
}

// TestDataBlockAccessConditions checks every row of the datasheet's table
// "Access conditions for data blocks", with both keys (the trailer is 011,
// so key B can authenticate).
func TestDataBlockAccessConditions(t *testing.T) {
	rows := map[uint8]struct{ read, write string }{
		0b000: {"AB", "AB"},
		0b010: {"AB", ""},
		0b100: {"AB", "B"},
		0b110: {"AB", "B"},
		0b001: {"AB", ""},
		0b011: {"B", "B"},
		0b101: {"B", ""},
		0b111: {"", ""},
	}
	h := newHost(t, pn532sim.Options{})
	card := pn532sim.NewCard(uid4)
	h.sim.Place(card)
	for cond, row := range rows {
		card.SetBlock(7, trailer(keyA, accessBytes([4]uint8{cond, cond, cond, 0b011}), 0x69, keyB))
		for _, withB := range []bool{false, true} {
			key := keyA
			if withB {
				key = keyB
			}
			card.SetBlock(4, pattern(0x40))
			if st := h.session(4, withB, key); st != 0 {
				t.Fatalf("%03b key B %v: auth %02X", cond, withB, st)
			}
			st, d := h.read(4)
			if ok := st == 0; ok != may(row.read, withB) || ok && !bytes.Equal(d, bytesOf(pattern(0x40))) {
				t.Errorf("%03b key B %v: read %02X % X, want allowed %v", cond, withB, st, d, may(row.read, withB))
			}
			if st != 0 && st != 0x14 {
				t.Errorf("%03b: refused read status %02X, want 14", cond, st)
			}
			h.session(4, withB, key)
			st = h.write(4, pattern(0x50))
			if ok := st == 0; ok != may(row.write, withB) {
				t.Errorf("%03b key B %v: write %02X, want allowed %v", cond, withB, st, may(row.write, withB))
			}
			if changed := card.Block(4) == pattern(0x50); changed != (st == 0) {
				t.Errorf("%03b key B %v: write status %02X but block changed %v", cond, withB, st, changed)
			}
		}
	}
}

// TestTrailerAccessConditions checks every row of the datasheet's table
// "Access conditions for the sector trailer": what each key sees reading
// the trailer and which fields its write changes (the general-purpose byte
// follows the access bits).
func TestTrailerAccessConditions(t *testing.T) {
	rows := map[uint8]struct{ keyAWrite, accessRead, accessWrite, keyBRead, keyBWrite string }{
		0b000: {"A", "A", "", "A", "A"},
		0b010: {"", "A", "", "A", ""},
		0b100: {"B", "AB", "", "", "B"},
		0b110: {"", "AB", "", "", ""},
		0b001: {"A", "A", "A", "A", "A"},
		0b011: {"B", "AB", "B", "", "B"},
		0b101: {"", "AB", "B", "", ""},
		0b111: {"", "AB", "", "", ""},
	}
	h := newHost(t, pn532sim.Options{})
	card := pn532sim.NewCard(uid4)
	h.sim.Place(card)
	newA := [6]byte{0x11, 0x11, 0x11, 0x11, 0x11, 0x11}
	newB := [6]byte{0x22, 0x22, 0x22, 0x22, 0x22, 0x22}
	for cond, row := range rows {
		access := accessBytes([4]uint8{0, 0, 0, cond})
		orig := trailer(keyA, access, 0x69, keyB)
		for _, withB := range []bool{false, true} {
			key := keyA
			if withB {
				key = keyB
			}
			card.SetBlock(7, orig)
			st := h.session(4, withB, key)
			if withB && row.keyBRead != "" {
				if st != 0x14 {
					t.Errorf("%03b: key B is readable, yet it authenticates (%02X)", cond, st)
				}
				continue
			}
			if st != 0 {
				t.Fatalf("%03b key B %v: auth %02X", cond, withB, st)
			}
			st, d := h.read(7)
			if st != 0 {
				t.Fatalf("%03b key B %v: trailer read %02X", cond, withB, st)
			}
			var want [16]byte
			if may(row.accessRead, withB) {
				copy(want[6:10], orig[6:10])
			}
			if may(row.keyBRead, withB) {
				copy(want[10:16], orig[10:16])
			}
			if !bytes.Equal(d, want[:]) {
				t.Errorf("%03b key B %v: trailer reads % X, want % X", cond, withB, d, want)
			}

			h.session(7, withB, key)
			st = h.write(7, trailer(newA, access, 0x42, newB))
			wA, wAcc, wB := may(row.keyAWrite, withB), may(row.accessWrite, withB), may(row.keyBWrite, withB)
			if ok := st == 0; ok != (wA || wAcc || wB) {
				t.Errorf("%03b key B %v: trailer write %02X", cond, withB, st)
			}
			got := card.Block(7)
			if changed := [6]byte(got[0:6]) == newA; changed != wA {
				t.Errorf("%03b key B %v: key A changed %v, want %v", cond, withB, changed, wA)
			}
			if changed := got[9] == 0x42; changed != wAcc {
				t.Errorf("%03b key B %v: access bits/GPB changed %v, want %v", cond, withB, changed, wAcc)
			}
			if changed := [6]byte(got[10:16]) == newB; changed != wB {
				t.Errorf("%03b key B %v: key B changed %v, want %v", cond, withB, changed, wB)
			}
		}
	}
}

func TestBlock0ReadOnly(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	card := pn532sim.NewCard(uid4)
	h.sim.Place(card)
	b0 := card.Block(0)
	if st := h.session(0, false, transport); st != 0 {
		t.Fatal(st)
	}
	if st, d := h.read(0); st != 0 || !bytes.Equal(d, b0[:]) {
		t.Fatalf("read block 0: %02X % X", st, d)
	}
	if st := h.write(0, pattern(0)); st != 0x14 {
		t.Fatalf("write block 0: %02X, want 14", st)
	}
	if card.Block(0) != b0 {
		t.Fatal("block 0 changed")
	}
	// The rest of sector 0 is an ordinary sector.
	h.session(0, false, transport)
	if st := h.write(1, pattern(1)); st != 0 || card.Block(1) != pattern(1) {
		t.Fatalf("write block 1: %02X", st)
	}
}

func TestMalformedAccessBitsBrick(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	card := pn532sim.NewCard(uid4)
	h.sim.Place(card)
	card.SetBlock(4, pattern(4))
	h.session(7, false, transport)
	bad := trailer(transport, [3]byte{0xFF, 0x07, 0x81}, 0x69, transport)
	// The card takes the write: validating is the driver's job.
	if st := h.write(7, bad); st != 0 {
		t.Fatalf("write malformed trailer: %02X", st)
	}
	if !card.Bricked(1) || card.Block(7) != bad {
		t.Fatalf("bricked %v, trailer % X", card.Bricked(1), card.Block(7))
	}
	if st, _ := h.read(4); st != 0x14 {
		t.Fatalf("read in the bricked sector: %02X, want 14", st)
	}
	for _, keyB := range []bool{false, true} {
		if st := h.session(4, keyB, transport); st != 0x14 {
			t.Errorf("auth (key B %v) to the bricked sector: %02X, want 14", keyB, st)
		}
	}
	// For good, even with the bytes mended behind the card's back.
	card.SetBlock(7, trailer(transport, [3]byte{0xFF, 0x07, 0x80}, 0x69, transport))
	if st := h.session(4, false, transport); st != 0x14 || !card.Bricked(1) {
		t.Errorf("mended sector: auth %02X, bricked %v", st, card.Bricked(1))
	}
	// Other sectors are untouched.
	if st := h.session(8, false, transport); st != 0 || card.Bricked(2) {
		t.Errorf("sector 2: auth %02X, bricked %v", st, card.Bricked(2))
	}
	// SetBlock bricks too.
	card.SetBlock(11, bad)
	if !card.Bricked(2) {
		t.Error("SetBlock of a malformed trailer did not brick")
	}
}

func TestBadHostChecksumIsNACKed(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	bad := append([]byte(nil), gfvReq...)
	bad[len(bad)-2]++ // DCS
	h.raw(bad)
	if f := h.frame(); f.Kind != pn532.Nack {
		t.Fatalf("got %v, want NACK", f.Kind)
	}
	h.raw([]byte{0x00, 0x00, 0xFF, 0x02, 0xFD, 0xD4, 0x02, 0x2A, 0x00}) // LCS
	if f := h.frame(); f.Kind != pn532.Nack {
		t.Fatalf("bad LCS: got %v, want NACK", f.Kind)
	}
	h.raw(gfvReq[3:]) // the rest of the torn frame, then a good one
	h.raw(gfvReq)
	h.ack()
	h.response(0x02)
	h.silent(20 * time.Millisecond)
}

func TestNACKResendsLastResponse(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	h.raw(pn532.NACK)
	h.silent(30 * time.Millisecond) // nothing to resend yet
	want := h.call(0x02)
	for range 2 {
		h.raw(pn532.NACK)
		if got := h.response(0x02); !bytes.Equal(got, want) {
			t.Fatalf("resent % X, want % X", got, want)
		}
	}
}

func TestFaultGarbage(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	junk := []byte{0xDE, 0xAD, 0xBE, 0xEF, 0x00}
	h.sim.InjectGarbage(junk)
	h.raw(gfvReq)
	want := append(append(append([]byte(nil), junk...), pn532.ACK...), gfvResp...)
	if got := h.readRaw(len(want)); !bytes.Equal(got, want) {
		t.Fatalf("got % X\nwant % X", got, want)
	}
	h.raw(gfvReq) // once only
	if got := h.readRaw(len(pn532.ACK) + len(gfvResp)); !bytes.Equal(got[len(pn532.ACK):], gfvResp) || !bytes.Equal(got[:6], pn532.ACK) {
		t.Fatalf("second exchange % X", got)
	}
}

func TestFaultDropACK(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	h.sim.Place(pn532sim.NewCard(uid4))
	h.sim.DropNextACK()
	h.send(0x4A, 0x01, 0x00)
	h.silent(50 * time.Millisecond)
	if h.sim.Status().Selected {
		t.Fatal("the dropped command ran")
	}
	if uid := h.list(); !bytes.Equal(uid, uid4) { // the driver's resend
		t.Fatalf("resend listed % X", uid)
	}
}

func TestFaultCorruptResponse(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	h.sim.CorruptNextResponse()
	h.raw(gfvReq)
	h.ack()
	if _, err := h.frameErr(); !errors.Is(err, pn532.ErrDataChecksum) {
		t.Fatalf("corrupted response: %v, want ErrDataChecksum", err)
	}
	h.raw(pn532.NACK)
	if got := h.response(0x02); !bytes.Equal(got, pn532sim.DefaultFirmware[:]) {
		t.Fatalf("resent % X", got)
	}
	h.call(0x02) // once only
}

func TestFaultRemoveCardOnWrite(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	card := pn532sim.NewCard(uid4)
	h.sim.Place(card)
	h.session(4, false, transport)
	h.sim.RemoveCardOnNextWrite()
	if st := h.write(4, pattern(9)); st != 0x01 {
		t.Fatalf("write as the card leaves: %02X, want 01", st)
	}
	if card.Block(4) != [16]byte{} {
		t.Fatalf("the torn write was applied: % X", card.Block(4))
	}
	if h.sim.Card() != nil {
		t.Fatal("card still on the antenna")
	}
	if st, _ := h.read(4); st != 0x01 {
		t.Fatalf("read after the card left: %02X, want 01", st)
	}
	h.call(0x32, 0x05, 0xFF, 0x01, 0x00)
	if uid := h.list(); uid != nil {
		t.Fatalf("listed % X on an empty antenna", uid)
	}
	h.sim.Place(card)
	h.session(4, false, transport)
	if st := h.write(4, pattern(9)); st != 0 || card.Block(4) != pattern(9) {
		t.Fatalf("write after placing again: %02X", st)
	}
}

func TestPowerLoss(t *testing.T) {
	h := newHost(t, pn532sim.Options{})
	h.sim.Place(pn532sim.NewCard(uid4))
	h.call(0x32, 0x05, 0xFF, 0x01, 0x02)
	h.session(4, false, transport)

	h.sim.PowerLoss()
	if !h.sim.Status().Asleep {
		t.Fatal("not asleep after PowerLoss")
	}
	h.raw(gfvReq)
	h.silent(30 * time.Millisecond)
	h.raw(pn532.NACK)
	h.silent(30 * time.Millisecond)
	sam, _ := pn532.Encode(pn532.HostToPN532, []byte{0x14, 0x01, 0x14, 0x00})
	h.raw(sam) // no wake-up first
	h.silent(30 * time.Millisecond)
	wake := []byte{0x55, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}
	h.raw(append(append([]byte(nil), wake...), gfvReq...)) // awake, but SAMConfiguration comes first
	h.silent(30 * time.Millisecond)
	h.raw(sam)
	h.ack()
	h.response(0x14)

	st := h.sim.Status()
	if st.Asleep || st.Selected || st.AuthSector != -1 || st.Retries != 0xFF {
		t.Fatalf("after wake-up: %+v", st)
	}
	if st, _ := h.read(4); st != 0x27 {
		t.Errorf("exchange after power loss: %02X, want 27 (target forgotten)", st)
	}
	h.call(0x02)

	// Wake-up and SAMConfiguration in one write, as drivers send them.
	h.sim.PowerLoss()
	h.raw(append(append([]byte(nil), wake...), sam...))
	h.ack()
	h.response(0x14)

	// A command in progress dies with the power.
	h.sim.Remove()
	h.send(0x4A, 0x01, 0x00)
	h.ack()
	h.sim.PowerLoss()
	h.sim.Place(pn532sim.NewCard(uid4))
	h.silent(50 * time.Millisecond)
	h.raw(append(append([]byte(nil), wake...), sam...))
	h.ack()
	h.response(0x14)
}

func TestRFLatency(t *testing.T) {
	const lat = 40 * time.Millisecond
	h := newHost(t, pn532sim.Options{RFLatency: lat})
	h.sim.Place(pn532sim.NewCard(uid4))
	start := time.Now()
	h.list()
	if d := time.Since(start); d < lat {
		t.Errorf("list took %v, want ≥ %v", d, lat)
	}
	start = time.Now()
	h.auth(4, false, transport, uid4)
	if d := time.Since(start); d < lat {
		t.Errorf("exchange took %v, want ≥ %v", d, lat)
	}
}

// TestPacing: 100 bytes out at 9600 baud (10 bits each) take ≈ 104 ms.
func TestPacing(t *testing.T) {
	h := newHost(t, pn532sim.Options{Baud: 9600})
	junk := bytes.Repeat([]byte{0xAA}, 100-len(pn532.ACK)-len(gfvResp))
	h.sim.InjectGarbage(junk)
	start := time.Now()
	h.raw(gfvReq)
	got := h.readRaw(100)
	d := time.Since(start)
	if !bytes.Equal(got[len(junk):], append(append([]byte(nil), pn532.ACK...), gfvResp...)) {
		t.Fatalf("got % X", got)
	}
	if d < 80*time.Millisecond || d > 400*time.Millisecond {
		t.Errorf("100 bytes at 9600 baud took %v, want ≈ 104 ms", d)
	}
	t.Logf("100 bytes at 9600 baud: %v", d)
}

// Serve returns when the link fails.
func TestServeReturnsOnLinkFailure(t *testing.T) {
	hc, dc := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- pn532sim.New(pn532sim.Options{}).Serve(context.Background(), dc) }()
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
