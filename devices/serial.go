package devices

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/tarm/serial"
)

// ErrPortFailed: reading or writing the serial port failed (adapter
// unplugged, I/O error, peer gone). The driver on it is unusable: end the
// session, close the port and open it again (Port.Run does).
var ErrPortFailed = errors.New("serial port failed")

// SerialConfig says which serial port to open and how.
type SerialConfig struct {
	// Path is the device, e.g. /dev/ttyUSB0 or a simulator's pty.
	Path string
	// Baud defaults to 115200.
	Baud int
	// ReadTimeout is how long a read waits for a first byte before it
	// returns (0, io.EOF), which drivers take as "no data yet". Default
	// 100 ms, which is also the resolution (termios VTIME). It must not be
	// infinite: closing a port does not end a read already waiting.
	ReadTimeout time.Duration
}

// OpenSerial opens a serial port, 8N1, raw.
func OpenSerial(c SerialConfig) (io.ReadWriteCloser, error) {
	if c.Baud == 0 {
		c.Baud = 115200
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 100 * time.Millisecond
	}
	p, err := serial.OpenPort(&serial.Config{
		Name:        c.Path,
		Baud:        c.Baud,
		ReadTimeout: c.ReadTimeout,
		Size:        8,
		Parity:      serial.ParityNone,
		StopBits:    serial.Stop1,
	})
	if err != nil {
		return nil, fmt.Errorf("devices: open serial port %s at %d baud: %w", c.Path, c.Baud, err)
	}
	return p, nil
}

// PortState is a Port's connection as the desk's device panel shows it.
type PortState struct {
	// Connected: the port is open and its device session is running.
	Connected bool
	// Since is when Connected last changed (when the Port started, before
	// the first open).
	Since time.Time
	// Err is why the port is not connected (the failed open, or what
	// ended the last session); empty while connected.
	Err string
	// Opens counts successful opens.
	Opens int
}

// Reopen backoff: the first retry waits minBackoff, each failure doubles
// the wait up to maxBackoff, and a session that lasted maxBackoff or more
// starts over from minBackoff.
const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// Port keeps one device connection open: it opens the port, runs the
// device session on it, and when the session fails (adapter unplugged,
// device silent) closes the port and opens it again with exponential
// backoff.
type Port struct {
	name string
	open func() (io.ReadWriteCloser, error)
	log  *slog.Logger

	mu    sync.Mutex
	state PortState
}

// NewPort returns a Port for the device called name (used in logs) that
// opens its connection with open. A nil log discards.
func NewPort(name string, open func() (io.ReadWriteCloser, error), log *slog.Logger) *Port {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Port{
		name:  name,
		open:  open,
		log:   log.With("device", name),
		state: PortState{Since: time.Now()},
	}
}

// Name is the device's name given to NewPort.
func (p *Port) Name() string { return p.name }

// State reports the connection; safe for concurrent use.
func (p *Port) State() PortState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Run keeps the port open until ctx is done. Each time the port opens it
// calls onOpen with it: onOpen is the device session (make the driver,
// initialise it, poll) and should return only when the device fails or
// ctx ends. Run then closes the port, records the error, backs off and
// opens it again. A session that returns nil while ctx is live has ended
// on purpose and is started again on a fresh port after the shortest
// backoff. Run returns when ctx is done, after closing the port.
func (p *Port) Run(ctx context.Context, onOpen func(ctx context.Context, rw io.ReadWriter) error) {
	delay := minBackoff
	lastOpenErr := ""
	for ctx.Err() == nil {
		rw, err := p.open()
		if err != nil {
			msg := "open: " + err.Error()
			if msg != lastOpenErr {
				// Logged once per distinct error: an adapter left unplugged
				// should not fill the log.
				p.log.Warn("device port will not open", "err", err, "retry_in", delay)
				lastOpenErr = msg
			}
			p.setErr(msg)
		} else {
			lastOpenErr = ""
			start := p.connected()
			p.log.Info("device connected")
			err = onOpen(ctx, rw)
			cerr := rw.Close()
			if ctx.Err() != nil {
				p.disconnected("stopped")
				p.log.Info("device port closed", "err", err)
				return
			}
			if cerr != nil {
				p.log.Debug("device port close", "err", cerr)
			}
			ended := err == nil
			if ended {
				err = errEnded
			}
			if ended || time.Since(start) >= maxBackoff {
				delay = minBackoff
			}
			p.disconnected(err.Error())
			p.log.Warn("device disconnected", "err", err, "retry_in", delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, maxBackoff)
	}
}

// errEnded stands for the reason when a session returned nil.
var errEnded = errors.New("session ended")

func (p *Port) connected() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.state = PortState{Connected: true, Since: now, Opens: p.state.Opens + 1}
	return now
}

func (p *Port) disconnected(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state.Connected = false
	p.state.Since = time.Now()
	p.state.Err = msg
}

// setErr records a failed open; Since stays when the port went down.
func (p *Port) setErr(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state.Err = msg
}
