package escpos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"onecard/devices"
)

// Receive buffer: the reader goroutine keeps at most this many unread
// bytes, dropping the oldest (they can only be stale: every query starts by
// discarding what is there).
const maxBuffered = 4096

// readLoop is the only reader of the port: io.ReadWriter has no deadlines,
// so reads happen here and queries wait on the buffer instead.
func (p *Printer) readLoop() {
	err := devices.ReadLoop(p.port, 256, p.closed, func(b []byte, _ time.Time) {
		if len(b) > 0 {
			p.push(b)
		}
	})
	if err != nil {
		p.fail(err)
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
