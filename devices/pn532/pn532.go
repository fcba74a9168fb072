package pn532

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"onecard/devices"
)

// Command codes (PN532 user manual UM0701-02 §7). The response to a
// command carries its code + 1.
const (
	cmdGetFirmwareVersion  byte = 0x02
	cmdSAMConfiguration    byte = 0x14
	cmdRFConfiguration     byte = 0x32
	cmdInDataExchange      byte = 0x40
	cmdInListPassiveTarget byte = 0x4A
	cmdInRelease           byte = 0x52
)

// wakeUp wakes a PN532 sleeping on HSU: the 0x55 bytes give it edges to
// wake on, the zeros time to start its oscillator before the first frame.
var wakeUp = []byte{0x55, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}

// Opts configures a Dev. Zero fields take their value from DefaultOpts (so
// ListRetries 0x00, a single try, cannot be chosen).
type Opts struct {
	// AckTimeout is how long to wait for the ACK after sending a command,
	// on top of the time the command and the ACK take on the wire.
	AckTimeout time.Duration
	// Timeout is how long to wait for a response after the ACK (on top of
	// its wire time), for every command but ListTarget, which takes its
	// own wait.
	Timeout time.Duration
	// Retries is how often to resend a command whose ACK did not come or
	// came damaged or as a NACK, and how often to NACK a damaged response.
	// Negative means never.
	Retries int
	// Baud is the line's speed, for computing how long frames take.
	Baud int
	// ListRetries is MxRtyPassiveActivation, set by Init: how often the
	// PN532 retries finding a card before InListPassiveTarget reports none
	// (0xFF: forever).
	ListRetries byte
}

// DefaultOpts suits a PN532 board on a USB serial adapter at 115200 baud.
var DefaultOpts = Opts{
	AckTimeout:  30 * time.Millisecond,
	Timeout:     time.Second,
	Retries:     2,
	Baud:        115200,
	ListRetries: 0x10,
}

// Dev is a PN532 on a serial port. It implements devices.Mifare. Its
// methods are safe for concurrent use and its commands run one at a time,
// but a card session (Select, Auth, ReadBlock, WriteBlock, Release) should
// belong to one caller at a time.
//
// A failed port breaks a Dev for good: a read error other than io.EOF
// (tarm/serial's "no data before ReadTimeout"), a write error, or a port
// that hung up (reads returning io.EOF at once, as a tty does once its USB
// adapter is unplugged). Every later call then returns an error wrapping
// devices.ErrPortFailed and the cause: close the port, open it again and
// make a new Dev (devices.Port does the reopening).
type Dev struct {
	port io.ReadWriter
	opts Opts

	closed    chan struct{}
	closeOnce sync.Once

	// Filled by the reader goroutine, consumed by the running command.
	rx *devices.RxBuffer

	// sem admits one command at a time; it guards wdone and dirty.
	sem   chan struct{}
	wdone chan error // the write in flight, nil when none
	dirty bool       // the last command may have left frames coming

	// The card session (devices.Mifare).
	mu     sync.Mutex
	tg     byte
	uid    []byte
	listed bool // the PN532 holds a target to release
	active bool // the card answers: Auth, ReadBlock and WriteBlock may go
}

var _ devices.Mifare = (*Dev)(nil)

// New returns a driver for the PN532 on port; nil opts means DefaultOpts.
// It starts a goroutine that reads port until the port fails or, after
// Close, its next read returns: close the port to end it. Call Init before
// anything else.
func New(port io.ReadWriter, opts *Opts) *Dev {
	o := DefaultOpts
	if opts != nil {
		o = *opts
		def := DefaultOpts
		if o.AckTimeout <= 0 {
			o.AckTimeout = def.AckTimeout
		}
		if o.Timeout <= 0 {
			o.Timeout = def.Timeout
		}
		switch {
		case o.Retries == 0:
			o.Retries = def.Retries
		case o.Retries < 0:
			o.Retries = 0
		}
		if o.Baud <= 0 {
			o.Baud = def.Baud
		}
		if o.ListRetries == 0 {
			o.ListRetries = def.ListRetries
		}
	}
	d := &Dev{
		port:   port,
		opts:   o,
		closed: make(chan struct{}),
		rx:     devices.NewRxBuffer(maxBuffered),
		sem:    make(chan struct{}, 1),
	}
	go d.rx.Fill(port, 512, d.closed)
	return d
}

// Close stops the driver: a command in progress and every later call
// return an error wrapping ErrClosed. It does not close the port; the
// reader goroutine ends at its next read.
func (d *Dev) Close() error {
	d.closeOnce.Do(func() { close(d.closed) })
	return nil
}

// Init wakes the PN532 up, sets it to normal mode with
// SAMConfiguration, and sets how often it looks for a card
// (RFConfiguration MaxRetries: MxRtyATR 0xFF, MxRtyPSL 0x01,
// MxRtyPassiveActivation Opts.ListRetries).
func (d *Dev) Init(ctx context.Context) error {
	// SAMConfiguration: normal mode, virtual-card timeout 20 × 50 ms
	// (unused in normal mode), IRQ 0x00: the P70_IRQ pin is not driven, as
	// the host only has the UART.
	if _, err := d.do(ctx, call{
		step:   "wake up and configure the SAM",
		prefix: wakeUp,
		cmd:    []byte{cmdSAMConfiguration, 0x01, 0x14, 0x00},
		wait:   d.opts.Timeout,
	}); err != nil {
		return err
	}
	_, err := d.do(ctx, call{
		step: "set the card-finding retries",
		cmd:  []byte{cmdRFConfiguration, 0x05, 0xFF, 0x01, d.opts.ListRetries},
		wait: d.opts.Timeout,
	})
	return err
}

// Firmware is the answer to GetFirmwareVersion.
type Firmware struct {
	IC      byte // 0x32 for a PN532
	Ver     byte
	Rev     byte
	Support byte // bit 0: ISO 14443-A, bit 1: ISO 14443-B, bit 2: ISO 18092
}

// String reads like "PN532 v1.6 (support 0x07)".
func (f Firmware) String() string {
	return fmt.Sprintf("PN5%02X v%d.%d (support 0x%02X)", f.IC, f.Ver, f.Rev, f.Support)
}

// Firmware reads the firmware version: a cheap check that the PN532
// answers.
func (d *Dev) Firmware(ctx context.Context) (Firmware, error) {
	const step = "read the firmware version"
	data, err := d.do(ctx, call{step: step, cmd: []byte{cmdGetFirmwareVersion}, wait: d.opts.Timeout})
	if err != nil {
		return Firmware{}, err
	}
	if len(data) < 4 {
		return Firmware{}, &Error{Step: step, Err: fmt.Errorf("%w: % X", ErrBadResponse, data)}
	}
	return Firmware{IC: data[0], Ver: data[1], Rev: data[2], Support: data[3]}, nil
}

// Target is a card found by ListTarget.
type Target struct {
	Tg      byte   // the PN532's number for it, for Exchange and ReleaseTarget
	SensRes uint16 // ATQA, e.g. 0x0004 for MIFARE Classic 1K
	SelRes  byte   // SAK, e.g. 0x08 for MIFARE Classic 1K
	UID     []byte // 4, 7 or 10 bytes
}

// ListTarget looks for one ISO 14443-A card at 106 kbps
// (InListPassiveTarget). It returns an error wrapping devices.ErrNoCard
// when the PN532 reports none after its retries (Opts.ListRetries), or
// reports nothing within wait (0: Opts.Timeout): then the driver aborts the
// search by sending an ACK. The target found becomes the card that Auth,
// ReadBlock and WriteBlock talk to.
func (d *Dev) ListTarget(ctx context.Context, wait time.Duration) (Target, error) {
	const step = "list passive targets"
	if wait <= 0 {
		wait = d.opts.Timeout
	}
	d.forget(false)
	data, err := d.do(ctx, call{
		step:   step,
		cmd:    []byte{cmdInListPassiveTarget, 0x01, 0x00},
		wait:   wait,
		silent: fmt.Errorf("none within %v: %w", wait, devices.ErrNoCard),
	})
	if err != nil {
		return Target{}, err
	}
	// NbTg, then Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID1, [ATS].
	if len(data) == 0 {
		return Target{}, &Error{Step: step, Err: ErrBadResponse}
	}
	if data[0] == 0 {
		return Target{}, &Error{Step: step, Err: devices.ErrNoCard}
	}
	if len(data) < 6 || len(data) < 6+int(data[5]) || data[5] == 0 {
		return Target{}, &Error{Step: step, Err: fmt.Errorf("%w: % X", ErrBadResponse, data)}
	}
	t := Target{
		Tg:      data[1],
		SensRes: uint16(data[2])<<8 | uint16(data[3]),
		SelRes:  data[4],
		UID:     append([]byte(nil), data[6:6+int(data[5])]...),
	}
	d.mu.Lock()
	d.tg, d.uid, d.listed, d.active = t.Tg, t.UID, true, true
	d.mu.Unlock()
	return t, nil
}

// Exchange sends data to target tg and returns its answer
// (InDataExchange). A status error comes back as an *Error with Status
// set, wrapping devices.ErrAuth for a MIFARE authentication error (0x14)
// and devices.ErrCardLost when the card stopped answering (0x01, 0x2B).
func (d *Dev) Exchange(ctx context.Context, tg byte, data []byte) ([]byte, error) {
	return d.exchange(ctx, fmt.Sprintf("exchange data with target %d", tg), tg, data)
}

func (d *Dev) exchange(ctx context.Context, step string, tg byte, data []byte) ([]byte, error) {
	cmd := append([]byte{cmdInDataExchange, tg}, data...)
	resp, err := d.do(ctx, call{step: step, cmd: cmd, wait: d.opts.Timeout})
	if err != nil {
		return nil, err
	}
	if len(resp) == 0 {
		return nil, &Error{Step: step, Err: ErrBadResponse}
	}
	// Bits 6 and 7 are the MI and NAD flags, not errors.
	if st := resp[0] & 0x3F; st != 0 {
		return nil, &Error{Step: step, Status: st, Err: statusErr(st)}
	}
	return resp[1:], nil
}

// ReleaseTarget ends the PN532's session with target tg (InRelease; 0:
// all targets).
func (d *Dev) ReleaseTarget(ctx context.Context, tg byte) error {
	step := fmt.Sprintf("release target %d", tg)
	resp, err := d.do(ctx, call{step: step, cmd: []byte{cmdInRelease, tg}, wait: d.opts.Timeout})
	d.mu.Lock()
	if tg == 0 || tg == d.tg {
		d.tg, d.uid, d.listed, d.active = 0, nil, false, false
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if len(resp) == 0 {
		return &Error{Step: step, Err: ErrBadResponse}
	}
	if st := resp[0] & 0x3F; st != 0 {
		return &Error{Step: step, Status: st, Err: statusErr(st)}
	}
	return nil
}

// forget ends the card session on the driver's side; keepListed leaves
// the PN532's target to be released.
func (d *Dev) forget(keepListed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.active = false
	if !keepListed {
		d.listed = false
		d.uid = nil
	}
}
