package locker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"onecard/devices"
)

// Receive buffer: the reader goroutine keeps at most this many unread
// bytes, dropping the oldest (they can only be stale: every request starts
// by discarding what is there).
const maxBuffered = 4096

// maxReply bounds a reply's length in any layout, for reckoning its time
// on the wire.
const maxReply = 32

// settleQuiet is how long the line must stay silent, on top of a reply's
// wire time, before a request follows one that went unanswered.
const settleQuiet = 20 * time.Millisecond

// lineStats counts what the line brought that was not an answer.
type lineStats struct {
	garbage int // bytes outside any reply
	damaged int // frames with a bad checksum or layout
	stray   int // good replies from another board than the one asked
}

// since describes what the line brought after mark, for error messages.
func (s lineStats) since(mark lineStats) string {
	g, d, o := s.garbage-mark.garbage, s.damaged-mark.damaged, s.stray-mark.stray
	if g == 0 && d == 0 && o == 0 {
		return "the line was silent"
	}
	return fmt.Sprintf("the line carried %d garbage bytes, %d damaged frame(s), %d reply(ies) from other boards", g, d, o)
}

// noReply: a request got no valid answer in time. Internal: query and
// Open retry, then report ErrNoAnswer.
type noReply struct{ line string }

func (e *noReply) Error() string { return "no valid answer in time (" + e.line + ")" }

// readLoop is the only reader of the port: io.ReadWriter has no deadlines,
// so reads happen here and requests wait on the buffer instead.
func (b *Bank) readLoop() {
	err := devices.ReadLoop(b.port, 256, b.closed, func(p []byte, _ time.Time) {
		if len(p) > 0 {
			b.push(p)
		}
	})
	if err != nil {
		b.fail(err)
	}
}

// push appends received bytes and wakes a waiting request.
func (b *Bank) push(p []byte) {
	b.rxMu.Lock()
	b.rx = append(b.rx, p...)
	if over := len(b.rx) - maxBuffered; over > 0 {
		b.line.garbage += over
		b.rx = append(b.rx[:0], b.rx[over:]...)
	}
	b.rxMu.Unlock()
	b.wake()
}

func (b *Bank) wake() {
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

// fail marks the Bank broken by a port error; the first error stays.
func (b *Bank) fail(err error) {
	b.rxMu.Lock()
	if b.rxErr == nil {
		b.rxErr = fmt.Errorf("%w: %w", devices.ErrPortFailed, err)
	}
	b.rxMu.Unlock()
	b.wake()
}

// broken returns the port error, if any.
func (b *Bank) broken() error {
	b.rxMu.Lock()
	defer b.rxMu.Unlock()
	return b.rxErr
}

// drain discards received bytes, counting them as garbage.
func (b *Bank) drain() {
	b.rxMu.Lock()
	b.line.garbage += len(b.rx)
	b.rx = b.rx[:0]
	b.rxMu.Unlock()
}

func (b *Bank) stats() lineStats {
	b.rxMu.Lock()
	defer b.rxMu.Unlock()
	return b.line
}

// take decodes what was received and returns the first valid reply from
// board, leaving the bytes after it; garbage, damaged frames and other
// boards' replies before it are dropped and counted.
func (b *Bank) take(board int) (Reply, bool) {
	b.rxMu.Lock()
	defer b.rxMu.Unlock()
	for len(b.rx) > 0 {
		r, n, err := b.opts.Codec.Decode(b.rx)
		b.rx = append(b.rx[:0], b.rx[n:]...)
		switch {
		case errors.Is(err, ErrIncomplete):
			b.line.garbage += n
			return Reply{}, false
		case err != nil:
			b.line.damaged++
			b.line.garbage += n - 1
		case r.Board != board:
			b.line.stray++
		default:
			return r, true
		}
	}
	return Reply{}, false
}

// ask sends req and waits for a valid reply from board, up to Timeout
// beyond the wire time. No valid reply in time is a *noReply.
func (b *Bank) ask(ctx context.Context, board int, req []byte) (Reply, error) {
	if err := b.settle(ctx); err != nil {
		return Reply{}, err
	}
	// Whatever came before the request is stale: noise, a late answer.
	b.drain()
	mark := b.stats()
	b.dirty = true // until a reply comes
	if err := b.write(ctx, req); err != nil {
		return Reply{}, err
	}
	limit := b.opts.Timeout + b.wire(len(req)+maxReply)
	t := time.NewTimer(limit)
	defer t.Stop()
	// Once a damaged frame has come, the answer was most likely that
	// frame: the line going quiet after it ends the wait early, so that
	// the request goes again without waiting out Timeout.
	var quiet *time.Timer
	var quietC <-chan time.Time
	defer func() {
		if quiet != nil {
			quiet.Stop()
		}
	}()
	for {
		if r, ok := b.take(board); ok {
			b.dirty = false
			return r, nil
		}
		if err := b.broken(); err != nil {
			return Reply{}, err
		}
		if b.stats().damaged > mark.damaged {
			d := settleQuiet + b.wire(maxReply)
			if quiet == nil {
				quiet = time.NewTimer(d)
				quietC = quiet.C
			} else {
				quiet.Reset(d)
			}
		}
		select {
		case <-b.notify:
		case <-t.C:
			return Reply{}, &noReply{line: b.stats().since(mark)}
		case <-quietC:
			return Reply{}, &noReply{line: b.stats().since(mark)}
		case <-ctx.Done():
			return Reply{}, ctx.Err()
		case <-b.closed:
			return Reply{}, ErrClosed
		}
	}
}

// settle waits, after a request that went unanswered, until the line has
// been quiet for a moment (at most Timeout), so that the late answer to
// that request cannot pass for the next one's.
func (b *Bank) settle(ctx context.Context) error {
	if !b.dirty {
		return nil
	}
	quiet := settleQuiet + b.wire(maxReply)
	end := time.Now().Add(b.opts.Timeout)
	for {
		b.drain()
		wait := min(quiet, time.Until(end))
		if wait <= 0 {
			break
		}
		silent, err := b.quietFor(ctx, wait)
		if err != nil {
			return err
		}
		if silent {
			break
		}
	}
	b.dirty = false
	return nil
}

// quietFor reports whether nothing arrives for d.
func (b *Bank) quietFor(ctx context.Context, d time.Duration) (bool, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.notify:
		return false, b.broken()
	case <-t.C:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-b.closed:
		return false, ErrClosed
	}
}

// write sends a request. A write the port does not take within Timeout
// and the wire time breaks the driver: no flow control is in use, so the
// port is stuck (a USB adapter that hung).
func (b *Bank) write(ctx context.Context, p []byte) error {
	// A write left behind by a request whose context ended goes first, so
	// that frames never interleave.
	if err := b.waitWrite(ctx, b.opts.Timeout); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.port.Write(p)
		done <- err
	}()
	b.wdone = done
	return b.waitWrite(ctx, b.opts.Timeout+b.wire(len(p)))
}

// waitWrite waits for the write in flight, if any, up to limit.
func (b *Bank) waitWrite(ctx context.Context, limit time.Duration) error {
	if b.wdone == nil {
		return nil
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case err := <-b.wdone:
		b.wdone = nil
		if err != nil {
			b.fail(err)
			return b.broken()
		}
		return nil
	case <-t.C:
		b.fail(fmt.Errorf("write stalled for %v", limit.Round(time.Millisecond)))
		return b.broken()
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closed:
		return ErrClosed
	}
}
