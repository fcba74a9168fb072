package cards_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"onecard/cards"
	"onecard/devices"
	"onecard/devices/pn532"
	firmwaresim "onecard/firmware-sim"
	pn532sim "onecard/firmware-sim/pn532"
)

var keys = cards.Keys{Master: []byte("site master key site master key!"), MAC: []byte("site mac key site mac key site m")}

// counter counts the bytes on the wire both ways and keeps what the host
// sent, to count its commands.
type counter struct {
	rw       io.ReadWriter
	mu       sync.Mutex
	in, out  int
	hostSent bytes.Buffer
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.rw.Read(p)
	c.mu.Lock()
	c.in += n
	c.mu.Unlock()
	return n, err
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.rw.Write(p)
	c.mu.Lock()
	c.out += n
	c.hostSent.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *counter) reset() {
	c.mu.Lock()
	c.in, c.out = 0, 0
	c.hostSent.Reset()
	c.mu.Unlock()
}

// cardCommands counts the host's commands that reach the card (and so pay
// the simulator's RF latency): InListPassiveTarget and InDataExchange.
func (c *counter) cardCommands() int {
	c.mu.Lock()
	r := bytes.NewReader(c.hostSent.Bytes())
	c.mu.Unlock()
	n := 0
	for {
		f, err := pn532.ReadFrame(r)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n
		}
		if err == nil && f.Kind == pn532.Normal && len(f.Data) > 0 && (f.Data[0] == 0x4A || f.Data[0] == 0x40) {
			n++
		}
	}
}

type rig struct {
	sim  *pn532sim.Sim
	dev  *pn532.Dev
	enc  *cards.Encoder
	wire *counter
	card *pn532sim.Card
}

// newRig runs the simulator on a real pty and the driver on its slave,
// opened with tarm/serial as a USB adapter would be, with a blank card on
// the antenna.
func newRig(tb testing.TB, baud int, rf time.Duration) *rig {
	tb.Helper()
	link := filepath.Join(tb.TempDir(), "encoder")
	pty, err := firmwaresim.OpenPTY(link)
	if err != nil {
		tb.Fatal(err)
	}
	sim := pn532sim.New(pn532sim.Options{Baud: baud, RFLatency: rf})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sim.Serve(ctx, pty) }()
	port, err := devices.OpenSerial(devices.SerialConfig{Path: link, Baud: baud, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	wire := &counter{rw: port}
	// A generous ACK timeout: the race detector and a busy CI machine can
	// delay the simulator far more than a real PN532 ever is.
	dev := pn532.New(wire, &pn532.Opts{Baud: baud, AckTimeout: 250 * time.Millisecond})
	tb.Cleanup(func() {
		dev.Close()
		port.Close()
		cancel()
		<-done
		pty.Close()
	})
	if err := dev.Init(context.Background()); err != nil {
		tb.Fatal(err)
	}
	enc, err := cards.NewEncoder(dev, keys, cards.DefaultSector)
	if err != nil {
		tb.Fatal(err)
	}
	card := pn532sim.NewCard([]byte{0x04, 0xA2, 0x3B, 0x1C})
	sim.Place(card)
	return &rig{sim: sim, dev: dev, enc: enc, wire: wire, card: card}
}

func (r *rig) read(t *testing.T) cards.Card {
	t.Helper()
	c, err := r.enc.Read(context.Background())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return c
}

var issueCred = cards.Credential{SiteID: 1, Number: 1000001, Type: cards.Owner,
	ValidFrom: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), ValidUntil: time.Date(2028, 11, 27, 0, 0, 0, 0, time.UTC)}

func TestIssueReadWipeOverAPty(t *testing.T) {
	r := newRig(t, 115200, 0)
	ctx := context.Background()
	if c := r.read(t); c.State != cards.Blank || c.UID.String() != "04A23B1C" {
		t.Fatalf("blank card reads %+v", c)
	}
	uid, err := r.enc.Issue(ctx, issueCred, nil)
	if err != nil {
		t.Fatal(err)
	}
	// On the card: the diversified keys and 78 77 88, no transport key.
	keyA, keyB := cards.DiversifyKeys(keys.Master, uid, 1)
	tr := r.card.Block(7)
	if !bytes.Equal(tr[0:6], keyA[:]) || !bytes.Equal(tr[6:9], []byte{0x78, 0x77, 0x88}) || !bytes.Equal(tr[10:16], keyB[:]) {
		t.Fatalf("trailer % X", tr)
	}
	c := r.read(t)
	if c.State != cards.Encoded || !c.MACValid || c.Credential == nil || c.Credential.Number != issueCred.Number ||
		!c.Credential.ValidUntil.Equal(issueCred.ValidUntil) {
		t.Fatalf("issued card reads %+v", c)
	}
	// Issuing the same credential again only verifies it.
	if _, err := r.enc.Issue(ctx, issueCred, nil); err != nil {
		t.Fatalf("repeat issue: %v", err)
	}
	other := issueCred
	other.Number++
	if _, err := r.enc.Issue(ctx, other, nil); !errors.Is(err, cards.ErrCardEncoded) {
		t.Fatalf("issue over another credential: %v", err)
	}
	if _, err := r.enc.Wipe(ctx); err != nil {
		t.Fatal(err)
	}
	if c := r.read(t); c.State != cards.Blank {
		t.Fatalf("wiped card reads %s", c.State)
	}
	if r.card.Block(7) != pn532sim.NewCard(uid).Block(7) || r.card.Block(4) != ([16]byte{}) {
		t.Fatalf("wiped card is not in transport state: % X", r.card.Block(7))
	}
	// Wiping a blank card changes nothing and succeeds.
	if _, err := r.enc.Wipe(ctx); err != nil {
		t.Fatalf("wipe of a blank card: %v", err)
	}
}

func TestIssueRefusals(t *testing.T) {
	r := newRig(t, 0, 0)
	ctx := context.Background()
	taken := errors.New("card 04A23B1C belongs to 3-2-1801 陈建华")
	if _, err := r.enc.Issue(ctx, issueCred, func(uid []byte) error { return taken }); !errors.Is(err, taken) {
		t.Fatalf("registered UID: %v", err)
	}
	if c := r.read(t); c.State != cards.Blank {
		t.Fatalf("a refused card was written: %s", c.State)
	}
	// A card with keys neither ours nor transport.
	foreign := pn532sim.NewCard([]byte{1, 2, 3, 4})
	tr := foreign.Block(7)
	copy(tr[0:6], []byte{1, 1, 1, 1, 1, 1})
	copy(tr[10:16], []byte{2, 2, 2, 2, 2, 2})
	foreign.SetBlock(7, tr)
	r.sim.Place(foreign)
	if c := r.read(t); c.State != cards.Foreign {
		t.Fatalf("foreign card reads %s", c.State)
	}
	if _, err := r.enc.Issue(ctx, issueCred, nil); !errors.Is(err, cards.ErrForeignCard) {
		t.Fatalf("issue on a foreign card: %v", err)
	}
	if _, err := r.enc.Wipe(ctx); !errors.Is(err, cards.ErrForeignCard) {
		t.Fatalf("wipe of a foreign card: %v", err)
	}
	// No card at all.
	r.sim.Remove()
	if _, err := r.enc.Issue(ctx, issueCred, nil); !errors.Is(err, devices.ErrNoCard) {
		t.Fatalf("issue without a card: %v", err)
	}
}

func TestTamperedCardFailsItsMAC(t *testing.T) {
	r := newRig(t, 0, 0)
	ctx := context.Background()
	if _, err := r.enc.Issue(ctx, issueCred, nil); err != nil {
		t.Fatal(err)
	}
	b := r.card.Block(5)
	b[7]++ // a second more of validity
	r.card.SetBlock(5, b)
	c := r.read(t)
	if c.State != cards.Encoded || c.MACValid || c.Problem == "" {
		t.Fatalf("tampered card reads %+v", c)
	}
}

// TestFaultsEndInAKnownState: each fault the simulator injects ends in a
// clear error or is absorbed by the driver; the card is then in a state
// Read names, and repeating the operation finishes it.
func TestFaultsEndInAKnownState(t *testing.T) {
	ctx := context.Background()
	t.Run("line noise is absorbed", func(t *testing.T) {
		r := newRig(t, 0, 0)
		r.sim.InjectGarbage([]byte{0x13, 0x00, 0xFF, 0x42})
		r.sim.DropNextACK()
		if _, err := r.enc.Issue(ctx, issueCred, nil); err != nil {
			t.Fatalf("issue through garbage and a dropped ACK: %v", err)
		}
		r.sim.CorruptNextResponse()
		if c := r.read(t); c.State != cards.Encoded || !c.MACValid {
			t.Fatalf("read through a corrupted response: %+v", c)
		}
	})
	t.Run("card lifted during the first write", func(t *testing.T) {
		r := newRig(t, 0, 0)
		r.sim.RemoveCardOnNextWrite()
		_, err := r.enc.Issue(ctx, issueCred, nil)
		if !errors.Is(err, devices.ErrCardLost) {
			t.Fatalf("lifted card: %v", err)
		}
		r.sim.Place(r.card)
		if c := r.read(t); c.State != cards.Blank {
			t.Fatalf("after the lift the card reads %s", c.State)
		}
		if _, err := r.enc.Issue(ctx, issueCred, nil); err != nil {
			t.Fatalf("repeat after the lift: %v", err)
		}
	})
	t.Run("interrupted issue leaves a partial card", func(t *testing.T) {
		r := newRig(t, 0, 0)
		// As if power went after the first data block: transport keys, data.
		want, _ := cards.Encode(issueCred, r.card.UID(), keys.MAC)
		r.card.SetBlock(4, want[0])
		if c := r.read(t); c.State != cards.Partial {
			t.Fatalf("half-written card reads %s", c.State)
		}
		if _, err := r.enc.Issue(ctx, issueCred, nil); err != nil {
			t.Fatalf("repeat issue: %v", err)
		}
		if c := r.read(t); c.State != cards.Encoded || !c.MACValid {
			t.Fatalf("completed card reads %+v", c)
		}
	})
	t.Run("card lifted during a wipe", func(t *testing.T) {
		r := newRig(t, 0, 0)
		if _, err := r.enc.Issue(ctx, issueCred, nil); err != nil {
			t.Fatal(err)
		}
		r.sim.RemoveCardOnNextWrite()
		if _, err := r.enc.Wipe(ctx); !errors.Is(err, devices.ErrCardLost) {
			t.Fatalf("lifted during wipe: %v", err)
		}
		r.sim.Place(r.card)
		if c := r.read(t); c.State != cards.Encoded {
			t.Fatalf("after the lift the card reads %s", c.State)
		}
		if _, err := r.enc.Wipe(ctx); err != nil {
			t.Fatalf("repeat wipe: %v", err)
		}
		if c := r.read(t); c.State != cards.Blank {
			t.Fatalf("wiped card reads %s", c.State)
		}
	})
	t.Run("power loss", func(t *testing.T) {
		r := newRig(t, 0, 0)
		r.sim.PowerLoss()
		_, err := r.enc.Issue(ctx, issueCred, nil)
		if !errors.Is(err, devices.ErrTimeout) {
			t.Fatalf("issue to a dead encoder: %v", err)
		}
		if c := r.card.Block(7); c != pn532sim.NewCard(r.card.UID()).Block(7) {
			t.Fatalf("the card changed while the encoder was dead")
		}
		// Power back: the device session starts over with Init.
		if err := r.dev.Init(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.enc.Issue(ctx, issueCred, nil); err != nil {
			t.Fatalf("issue after power came back: %v", err)
		}
	})
}

// BenchmarkIssue issues one card over a pty at 115200 baud with the
// simulator pacing its bytes and adding RF latency, and reports the bytes
// on the wire, the lower bound (wire bits ÷ baud + RF latency × card
// commands) and the ratio to it.
func BenchmarkIssue(b *testing.B) {
	const baud = 115200
	const rf = 3 * time.Millisecond
	r := newRig(b, baud, rf)
	ctx := context.Background()
	var total time.Duration
	var in, out, cmds int
	for b.Loop() {
		b.StopTimer()
		if _, err := r.enc.Wipe(ctx); err != nil {
			b.Fatal(err)
		}
		r.wire.reset()
		start := time.Now()
		b.StartTimer()
		if _, err := r.enc.Issue(ctx, issueCred, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		total += time.Since(start)
		in, out, cmds = r.wire.in, r.wire.out, r.wire.cardCommands()
		b.StartTimer()
	}
	bound := time.Duration(float64(in+out)*10/baud*float64(time.Second)) + time.Duration(cmds)*rf
	per := total / time.Duration(b.N)
	b.ReportMetric(float64(in), "bytes-in/op")
	b.ReportMetric(float64(out), "bytes-out/op")
	b.ReportMetric(float64(cmds), "card-cmds/op")
	b.ReportMetric(float64(bound.Microseconds())/1000, "bound-ms")
	b.ReportMetric(float64(per)/float64(bound), "ratio")
}
