package escpos

import (
	"context"
	"errors"
	"time"
)

// maxBuffered bounds the receive buffer (devices.RxBuffer): a query reads
// what came after it started, older bytes are stale.
const maxBuffered = 4096

// errWait: the deadline of a wait passed. Internal: query turns it into a
// timeout error.
var errWait = errors.New("wait expired")

// readByte returns the next byte received, waiting until deadline, the
// end of ctx, Close or a port failure.
func (p *Printer) readByte(ctx context.Context, deadline time.Time) (byte, error) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		if b, ok, err := p.rx.Next(); ok || err != nil {
			return b, err
		}
		select {
		case <-p.rx.Ready():
		case <-t.C:
			return 0, errWait
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-p.closed:
			return 0, ErrClosed
		}
	}
}
