package pn532_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"onecard/devices"
	"onecard/devices/devicestest"
	"onecard/devices/pn532"
)

// Byte-exact fixtures. Frames from the PN532 user manual or PROTOCOLS.md
// are written out; the rest are built with Encode, whose golden vectors
// are in frame_test.go.
var (
	ack  = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	nack = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}

	wakeUpSAM = []byte{
		0x55, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0xFF, 0x05, 0xFB, 0xD4, 0x14, 0x01, 0x14, 0x00, 0x03, 0x00,
	}
	samResp    = []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD5, 0x15, 0x16, 0x00}
	rfConfig   = []byte{0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD4, 0x32, 0x05, 0xFF, 0x01, 0x10, 0xE5, 0x00}
	rfResp     = []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD5, 0x33, 0xF8, 0x00}
	getFW      = []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00}
	fwResp     = []byte{0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00}
	listTarget = []byte{0x00, 0x00, 0xFF, 0x04, 0xFC, 0xD4, 0x4A, 0x01, 0x00, 0xE1, 0x00}

	uid    = []byte{0xDE, 0xAD, 0xBE, 0xEF}
	oneTag = resp(0x4B, 0x01, 0x01, 0x00, 0x04, 0x08, 0x04, 0xDE, 0xAD, 0xBE, 0xEF)
	noTag  = resp(0x4B, 0x00)
	keyFF  = [6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
)

func frame(tfi byte, data ...byte) []byte {
	f, err := pn532.Encode(tfi, data)
	if err != nil {
		panic(err)
	}
	return f
}

func cmd(data ...byte) []byte  { return frame(pn532.HostToPN532, data...) }
func resp(data ...byte) []byte { return frame(pn532.PN532ToHost, data...) }

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// testOpts keeps failing paths quick.
var testOpts = pn532.Opts{AckTimeout: 20 * time.Millisecond, Timeout: 200 * time.Millisecond, Retries: 2}

func newDev(t *testing.T, steps ...devicestest.Step) *pn532.Dev {
	t.Helper()
	opts := testOpts
	d := pn532.New(devicestest.Playback(t, steps...), &opts)
	t.Cleanup(func() { d.Close() })
	return d
}

// selected returns a Dev whose card 1 (UID DE AD BE EF) is selected, and
// the steps that did it; more steps follow.
func selected(t *testing.T, more ...devicestest.Step) *pn532.Dev {
	t.Helper()
	steps := append([]devicestest.Step{{Want: listTarget, Reply: cat(ack, oneTag)}}, more...)
	d := newDev(t, steps...)
	got, err := d.Select(context.Background())
	if err != nil || !bytes.Equal(got, uid) {
		t.Fatalf("Select = % X, %v", got, err)
	}
	return d
}

func wantStep(t *testing.T, err error, step string, sentinel error) {
	t.Helper()
	var e *pn532.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *pn532.Error", err, err)
	}
	if e.Step != step {
		t.Errorf("step = %q, want %q", e.Step, step)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("err = %v, want it to wrap %v", err, sentinel)
	}
	if !strings.HasPrefix(err.Error(), "pn532: "+step+": ") {
		t.Errorf("message %q does not name the step", err)
	}
}

func TestInit(t *testing.T) {
	d := newDev(t,
		devicestest.Step{Want: wakeUpSAM, Reply: cat(ack, samResp)},
		devicestest.Step{Want: rfConfig, Reply: cat(ack, rfResp)},
	)
	if err := d.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestInitListRetries(t *testing.T) {
	opts := testOpts
	opts.ListRetries = 0xFF
	d := pn532.New(devicestest.Playback(t,
		devicestest.Step{Want: wakeUpSAM, Reply: cat(ack, samResp)},
		devicestest.Step{Want: cmd(0x32, 0x05, 0xFF, 0x01, 0xFF), Reply: cat(ack, rfResp)},
	), &opts)
	defer d.Close()
	if err := d.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestFirmware(t *testing.T) {
	d := newDev(t, devicestest.Step{Want: getFW, Reply: cat(ack, fwResp)})
	fw, err := d.Firmware(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (pn532.Firmware{IC: 0x32, Ver: 1, Rev: 6, Support: 7}); fw != want {
		t.Fatalf("Firmware = %+v, want %+v", fw, want)
	}
	if s := fw.String(); s != "PN532 v1.6 (support 0x07)" {
		t.Errorf("String = %q", s)
	}
}

func TestListTarget(t *testing.T) {
	d := newDev(t, devicestest.Step{Want: listTarget, Reply: cat(ack, oneTag)})
	tg, err := d.ListTarget(context.Background(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Tg != 1 || tg.SensRes != 0x0004 || tg.SelRes != 0x08 || !bytes.Equal(tg.UID, uid) {
		t.Fatalf("target = %+v", tg)
	}
}

func TestListTarget7ByteUID(t *testing.T) {
	d := newDev(t, devicestest.Step{Want: listTarget,
		Reply: cat(ack, resp(0x4B, 0x01, 0x01, 0x00, 0x44, 0x00, 0x07, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66))})
	tg, err := d.ListTarget(context.Background(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if tg.SensRes != 0x0044 || tg.SelRes != 0 || !bytes.Equal(tg.UID, []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}) {
		t.Fatalf("target = %+v", tg)
	}
}

func TestListTargetNone(t *testing.T) {
	d := newDev(t, devicestest.Step{Want: listTarget, Reply: cat(ack, noTag)})
	_, err := d.ListTarget(context.Background(), 100*time.Millisecond)
	wantStep(t, err, "list passive targets", devices.ErrNoCard)
	if _, err := d.ReadBlock(context.Background(), 4); !errors.Is(err, pn532.ErrNotSelected) {
		t.Errorf("ReadBlock with no card: %v, want ErrNotSelected", err)
	}
}

// TestListTargetAbort: the PN532 ACKs but finds no card within the wait:
// the driver aborts with an ACK, reports no card, and the next command
// works.
func TestListTargetAbort(t *testing.T) {
	d := newDev(t,
		devicestest.Step{Want: listTarget, Reply: ack},
		devicestest.Step{Want: ack},
		devicestest.Step{Want: getFW, Reply: cat(ack, fwResp)},
	)
	start := time.Now()
	_, err := d.ListTarget(context.Background(), 30*time.Millisecond)
	wantStep(t, err, "list passive targets", devices.ErrNoCard)
	if el := time.Since(start); el > 150*time.Millisecond {
		t.Errorf("ListTarget took %v with a 30 ms wait", el)
	}
	if _, err := d.Firmware(context.Background()); err != nil {
		t.Fatalf("after abort: %v", err)
	}
}

func TestAuth(t *testing.T) {
	authA := cmd(0x40, 0x01, 0x60, 0x07, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xDE, 0xAD, 0xBE, 0xEF)
	d := selected(t, devicestest.Step{Want: authA, Reply: cat(ack, resp(0x41, 0x00))})
	if err := d.Auth(context.Background(), 7, false, keyFF, nil); err != nil {
		t.Fatal(err)
	}
}

// TestAuth7ByteUID: the last 4 bytes of a 7-byte UID go into the
// authentication.
func TestAuth7ByteUID(t *testing.T) {
	key := [6]byte{1, 2, 3, 4, 5, 6}
	authB := cmd(0x40, 0x01, 0x61, 0x3C, 1, 2, 3, 4, 5, 6, 0x44, 0x55, 0x66, 0x77)
	d := selected(t, devicestest.Step{Want: authB, Reply: cat(ack, resp(0x41, 0x00))})
	if err := d.Auth(context.Background(), 0x3C, true, key, []byte{0x04, 0x11, 0x22, 0x44, 0x55, 0x66, 0x77}); err != nil {
		t.Fatal(err)
	}
}

func TestAuthRefused(t *testing.T) {
	authB := cmd(0x40, 0x01, 0x61, 0x07, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xDE, 0xAD, 0xBE, 0xEF)
	d := selected(t,
		devicestest.Step{Want: authB, Reply: cat(ack, resp(0x41, 0x14))},
		// The card halted, but the PN532 still lists it: Release frees it.
		devicestest.Step{Want: cmd(0x52, 0x01), Reply: cat(ack, resp(0x53, 0x00))},
	)
	err := d.Auth(context.Background(), 7, true, keyFF, uid)
	wantStep(t, err, "authenticate block 7 with key B", devices.ErrAuth)
	if want := "pn532: authenticate block 7 with key B: card refused the key (status 0x14)"; err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	var e *pn532.Error
	if errors.As(err, &e) && e.Status != 0x14 {
		t.Errorf("Status = %#x", e.Status)
	}
	// No bytes go out for a card the driver knows has halted.
	_, err = d.ReadBlock(context.Background(), 4)
	wantStep(t, err, "read block 4", pn532.ErrNotSelected)
	if err := d.Auth(context.Background(), 7, false, keyFF, nil); !errors.Is(err, pn532.ErrNotSelected) {
		t.Errorf("Auth after refusal: %v", err)
	}
	if err := d.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Nothing listed any more: Release is a no-op.
	if err := d.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReadWrite(t *testing.T) {
	var block [16]byte
	for i := range block {
		block[i] = byte(0xA0 + i)
	}
	d := selected(t,
		devicestest.Step{Want: cmd(0x40, 0x01, 0x30, 0x04), Reply: cat(ack, resp(append([]byte{0x41, 0x00}, block[:]...)...))},
		devicestest.Step{Want: cmd(append([]byte{0x40, 0x01, 0xA0, 0x05}, block[:]...)...), Reply: cat(ack, resp(0x41, 0x00))},
	)
	got, err := d.ReadBlock(context.Background(), 4)
	if err != nil || got != block {
		t.Fatalf("ReadBlock = % X, %v", got, err)
	}
	if err := d.WriteBlock(context.Background(), 5, block); err != nil {
		t.Fatal(err)
	}
}

func TestCardErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reply    []byte
		sentinel error
		msg      string
	}{
		{"card lifted", resp(0x41, 0x01), devices.ErrCardLost, "pn532: read block 4: card left the antenna (status 0x01)"},
		{"card gone", resp(0x41, 0x2B), devices.ErrCardLost, "pn532: read block 4: card left the antenna (status 0x2B)"},
		{"CRC error", resp(0x41, 0x02), nil, "pn532: read block 4: CRC error on the RF link (status 0x02)"},
		{"MI flag is no error but the error is", resp(0x41, 0x42), nil, "pn532: read block 4: CRC error on the RF link (status 0x02)"},
		{"short block", resp(0x41, 0x00, 0x01, 0x02), pn532.ErrBadResponse, "pn532: read block 4: malformed response: 2 bytes, want 16"},
		{"error frame", pn532.ErrorFrame, pn532.ErrRejected, "pn532: read block 4: the PN532 rejected the command (error frame)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := selected(t, devicestest.Step{Want: cmd(0x40, 0x01, 0x30, 0x04), Reply: cat(ack, tc.reply)})
			_, err := d.ReadBlock(context.Background(), 4)
			wantStep(t, err, "read block 4", tc.sentinel)
			if err.Error() != tc.msg {
				t.Errorf("message = %q, want %q", err, tc.msg)
			}
			if _, err := d.ReadBlock(context.Background(), 4); !errors.Is(err, pn532.ErrNotSelected) {
				t.Errorf("second ReadBlock: %v, want ErrNotSelected", err)
			}
		})
	}
}

func TestExchangeAndReleaseTarget(t *testing.T) {
	d := newDev(t,
		devicestest.Step{Want: cmd(0x40, 0x02, 0x30, 0x00), Reply: cat(ack, resp(0x41, 0x00, 0xAA, 0xBB))},
		devicestest.Step{Want: cmd(0x52, 0x02), Reply: cat(ack, resp(0x53, 0x00))},
		devicestest.Step{Want: cmd(0x52, 0x00), Reply: cat(ack, resp(0x53, 0x27))},
	)
	got, err := d.Exchange(context.Background(), 2, []byte{0x30, 0x00})
	if err != nil || !bytes.Equal(got, []byte{0xAA, 0xBB}) {
		t.Fatalf("Exchange = % X, %v", got, err)
	}
	if err := d.ReleaseTarget(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	err = d.ReleaseTarget(context.Background(), 0)
	wantStep(t, err, "release target 0", nil)
	if want := "pn532: release target 0: command not acceptable in the current context (status 0x27)"; err.Error() != want {
		t.Errorf("message = %q", err)
	}
}

// Transport faults: every one ends with the firmware version read right.
func TestTransportRecovers(t *testing.T) {
	badResp := append([]byte(nil), fwResp...)
	badResp[8] ^= 0x10 // a data byte: the DCS no longer matches
	badLen := append([]byte(nil), fwResp...)
	badLen[4] ^= 0x01
	for _, tc := range []struct {
		name  string
		steps []devicestest.Step
	}{
		{"NACK then resend", []devicestest.Step{
			{Want: getFW, Reply: nack},
			{Want: getFW, Reply: cat(ack, fwResp)},
		}},
		{"missing ACK then resend", []devicestest.Step{
			{Want: getFW},
			{Want: getFW, Reply: cat(ack, fwResp)},
		}},
		{"two missing ACKs", []devicestest.Step{
			{Want: getFW},
			{Want: getFW},
			{Want: getFW, Reply: cat(ack, fwResp)},
		}},
		{"damaged ACK then resend", []devicestest.Step{
			{Want: getFW, Reply: []byte{0x00, 0x00, 0xFF, 0x00, 0xFE, 0x00}},
			{Want: getFW, Reply: cat(ack, fwResp)},
		}},
		{"bad response checksum, NACK, resent", []devicestest.Step{
			{Want: getFW, Reply: cat(ack, badResp)},
			{Want: nack, Reply: fwResp},
		}},
		{"bad response length checksum, NACK, resent", []devicestest.Step{
			{Want: getFW, Reply: cat(ack, badLen)},
			{Want: nack, Reply: fwResp},
		}},
		{"garbage before the ACK", []devicestest.Step{
			{Want: getFW, Reply: cat([]byte{0xFF, 0x13, 0x00, 0x42, 0x00}, ack, fwResp)},
		}},
		{"stale response before the ACK", []devicestest.Step{
			{Want: getFW, Reply: cat(resp(0x4B, 0x00), ack, fwResp)},
		}},
		{"response split and slow", []devicestest.Step{
			{Want: getFW, Reply: ack},
			{Delay: 10 * time.Millisecond, Reply: fwResp[:4]},
			{Delay: 10 * time.Millisecond, Reply: fwResp[4:]},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDev(t, tc.steps...)
			fw, err := d.Firmware(context.Background())
			if err != nil || fw.IC != 0x32 {
				t.Fatalf("Firmware = %+v, %v", fw, err)
			}
		})
	}
}

func TestTransportGivesUp(t *testing.T) {
	badResp := append([]byte(nil), fwResp...)
	badResp[8] ^= 0x10
	for _, tc := range []struct {
		name     string
		steps    []devicestest.Step
		sentinel error
		msg      string
	}{
		{"no ACK", []devicestest.Step{{Want: getFW}, {Want: getFW}, {Want: getFW}}, devices.ErrTimeout,
			"pn532: read the firmware version: no ACK after 3 tries: device did not answer in time"},
		{"NACKs", []devicestest.Step{{Want: getFW, Reply: nack}, {Want: getFW, Reply: nack}, {Want: getFW, Reply: nack}}, nil,
			"pn532: read the firmware version: the PN532 kept answering NACK: the line corrupts commands (3 tries)"},
		{"no response", []devicestest.Step{{Want: getFW, Reply: ack}, {Want: ack}}, devices.ErrTimeout,
			"pn532: read the firmware version: no response within 200ms: device did not answer in time"},
		{"damaged responses", []devicestest.Step{
			{Want: getFW, Reply: cat(ack, badResp)},
			{Want: nack, Reply: badResp},
			{Want: nack, Reply: badResp},
		}, nil, "pn532: read the firmware version: response arrived damaged 3 times"},
		{"error frame instead of ACK", []devicestest.Step{{Want: getFW, Reply: pn532.ErrorFrame}}, pn532.ErrRejected,
			"pn532: read the firmware version: the PN532 rejected the command (error frame)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDev(t, tc.steps...)
			_, err := d.Firmware(context.Background())
			wantStep(t, err, "read the firmware version", tc.sentinel)
			if err.Error() != tc.msg {
				t.Errorf("message = %q, want %q", err, tc.msg)
			}
		})
	}
}

// TestCancel: a cancelled wait for the response aborts the command.
func TestCancel(t *testing.T) {
	d := newDev(t,
		devicestest.Step{Want: listTarget, Reply: ack},
		devicestest.Step{Want: ack},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := d.ListTarget(ctx, time.Second)
	wantStep(t, err, "list passive targets", context.DeadlineExceeded)
}

func TestClose(t *testing.T) {
	d := newDev(t)
	d.Close()
	_, err := d.Firmware(context.Background())
	wantStep(t, err, "read the firmware version", pn532.ErrClosed)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// scriptedPort answers each write with the next of its replies; a read
// with nothing to return gets (0, io.EOF) after delay, as tarm/serial does
// when its ReadTimeout passes.
type scriptedPort struct {
	replies chan reply // answers for the coming writes
	ready   chan reply
	delay   atomic.Int64
}

type reply struct {
	b   []byte
	err error
}

func newScriptedPort(delay time.Duration, replies ...reply) *scriptedPort {
	p := &scriptedPort{replies: make(chan reply, len(replies)), ready: make(chan reply, len(replies))}
	for _, r := range replies {
		p.replies <- r
	}
	p.delay.Store(int64(delay))
	return p
}

func (p *scriptedPort) Read(b []byte) (int, error) {
	t := time.NewTimer(time.Duration(p.delay.Load()))
	defer t.Stop()
	select {
	case r := <-p.ready:
		return copy(b, r.b), r.err
	case <-t.C:
		return 0, io.EOF
	}
}

func (p *scriptedPort) Write(b []byte) (int, error) {
	select {
	case r := <-p.replies:
		p.ready <- r
	default:
	}
	return len(b), nil
}

func TestReadErrorBreaks(t *testing.T) {
	ioErr := errors.New("read /dev/ttyUSB0: input/output error")
	port := newScriptedPort(time.Hour, reply{b: cat(ack, fwResp[:5]), err: ioErr})
	opts := testOpts
	d := pn532.New(port, &opts)
	defer d.Close()
	_, err := d.Firmware(context.Background())
	wantStep(t, err, "read the firmware version", devices.ErrPortFailed)
	if !errors.Is(err, ioErr) {
		t.Errorf("err = %v, want it to wrap the read error", err)
	}
	// Broken for good, with the same cause.
	_, err = d.Select(context.Background())
	wantStep(t, err, "list passive targets", ioErr)
	if !errors.Is(err, devices.ErrPortFailed) {
		t.Errorf("err = %v", err)
	}
}

// TestEOFIsNoData: (0, io.EOF) from a read that timed out is no data yet;
// the same EOF returned at once, again and again, is a port that hung up.
func TestEOFIsNoData(t *testing.T) {
	port := newScriptedPort(20*time.Millisecond, reply{b: cat(ack, fwResp)})
	opts := testOpts
	opts.AckTimeout = 100 * time.Millisecond // several EOFs before the ACK
	d := pn532.New(port, &opts)
	defer d.Close()
	time.Sleep(50 * time.Millisecond) // EOFs while idle, too
	if _, err := d.Firmware(context.Background()); err != nil {
		t.Fatal(err)
	}
	port.delay.Store(0)
	deadline := time.Now().Add(time.Second)
	for {
		_, err := d.Firmware(context.Background())
		if errors.Is(err, devices.ErrPortFailed) {
			if !strings.Contains(err.Error(), "hung up") {
				t.Errorf("err = %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a port returning EOF at once never counted as hung up: %v", err)
		}
	}
}

// TestPeerClosed: a net.Pipe whose device end closed breaks the driver.
func TestPeerClosed(t *testing.T) {
	drv, dev := net.Pipe()
	opts := testOpts
	d := pn532.New(drv, &opts)
	defer d.Close()
	dev.Close()
	deadline := time.Now().Add(time.Second)
	for {
		_, err := d.Firmware(context.Background())
		if errors.Is(err, devices.ErrPortFailed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("driver on a closed pipe: %v", err)
		}
	}
}
