package escpos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"onecard/devices"
)

// Receive buffer: the reader goroutine keeps at most this many unread
// bytes, dropping the oldest (they can only be stale: every query starts by
// discarding what is there).
const maxBuffered = 4096

// Hang-up detection, as in the pn532 driver: a serial read that times out
// takes ReadTimeout (at least 100 ms with tarm/serial); one that returns
// io.EOF at once, again and again, is a port that hung up (Linux hangs up
// a tty whose USB adapter was unplugged, or whose pty master closed) or a
// closed pipe.
const (
	fastEOF     = 5 * time.Millisecond
	hangUpAfter = 5
)

var errHungUp = errors.New("port hung up (every read ends at once: adapter unplugged or peer closed)")

// readLoop is the only reader of the port: io.ReadWriter has no deadlines,
// so reads happen here and queries wait on the buffer instead.
func (p *Printer) readLoop() {
	buf := make([]byte, 256)
	fast := 0
	for {
		start := time.Now()
		n, err := p.port.Read(buf)
		select {
		case <-p.closed:
			return
		default:
		}
		if n > 0 {
			p.push(buf[:n])
			fast = 0
		}
		if err != nil && !errors.Is(err, io.EOF) {
			p.fail(err)
			return
		}
		if n > 0 {
			continue
		}
		// (0, io.EOF) is tarm/serial's "no data before ReadTimeout".
		if time.Since(start) >= fastEOF {
			fast = 0
			continue
		}
		fast++
		if fast >= hangUpAfter {
			p.fail(errHungUp)
			return
		}
		t := time.NewTimer(time.Millisecond << fast)
		select {
		case <-p.closed:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// push appends received bytes and wakes a waiting query.
func (p *Printer) push(b []byte) {
	p.rxMu.Lock()
	p.rx = append(p.rx, b...)
	if over := len(p.rx) - maxBuffered; over > 0 {
		p.rx = append(p.rx[:0], p.rx[over:]...)
	}
	p.rxMu.Unlock()
	p.wake()
}

func (p *Printer) wake() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// fail marks the Printer broken by a port error; the first error stays.
func (p *Printer) fail(err error) {
	p.rxMu.Lock()
	if p.rxErr == nil {
		p.rxErr = fmt.Errorf("%w: %w", devices.ErrPortFailed, err)
	}
	p.rxMu.Unlock()
	p.wake()
}

// broken returns the port error, if any.
func (p *Printer) broken() error {
	p.rxMu.Lock()
	defer p.rxMu.Unlock()
	return p.rxErr
}

// drain discards received bytes.
func (p *Printer) drain() {
	p.rxMu.Lock()
	p.rx = p.rx[:0]
	p.rxMu.Unlock()
}

// errWait: the deadline of a wait passed. Internal: query turns it into a
// timeout error.
var errWait = errors.New("wait expired")

// readByte returns the next byte received, waiting until deadline, the
// end of ctx, Close or a port failure.
func (p *Printer) readByte(ctx context.Context, deadline time.Time) (byte, error) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		p.rxMu.Lock()
		if len(p.rx) > 0 {
			b := p.rx[0]
			p.rx = p.rx[1:]
			p.rxMu.Unlock()
			return b, nil
		}
		err := p.rxErr
		p.rxMu.Unlock()
		if err != nil {
			return 0, err
		}
		select {
		case <-p.notify:
		case <-t.C:
			return 0, errWait
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-p.closed:
			return 0, ErrClosed
		}
	}
}
