package locker

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// maxBuffered bounds the receive buffer (devices.RxBuffer): a request reads
// what came after it started, older bytes are stale.
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

// stats counts what the line brought so far; bytes the receive buffer
// dropped unread (drained before a request, or overflowing) are garbage.
func (b *Bank) stats() lineStats {
	s := b.line
	s.garbage += b.rx.Discarded()
	return s
}

// take decodes what was received and returns the first valid reply from
// board, leaving the bytes after it; garbage, damaged frames and other
// boards' replies before it are dropped and counted.
func (b *Bank) take(board int) (reply Reply, ok bool) {
	b.rx.Consume(func(p []byte) int {
		used := 0
		for used < len(p) {
			r, n, err := b.opts.Codec.Decode(p[used:])
			used += n
			switch {
			case errors.Is(err, ErrIncomplete):
				b.line.garbage += n
				return used
			case err != nil:
				b.line.damaged++
				b.line.garbage += n - 1
			case r.Board != board:
				b.line.stray++
			default:
				reply, ok = r, true
				return used
			}
		}
		return used
	})
	return reply, ok
}

// ask sends req and waits for a valid reply from board, up to Timeout
// beyond the wire time. No valid reply in time is a *noReply.
func (b *Bank) ask(ctx context.Context, board int, req []byte) (Reply, error) {
	if err := b.settle(ctx); err != nil {
		return Reply{}, err
	}
	// Whatever came before the request is stale: noise, a late answer.
	b.rx.Drain()
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
		if err := b.rx.Err(); err != nil {
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
		case <-b.rx.Ready():
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
		b.rx.Drain()
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
	case <-b.rx.Ready():
		return false, b.rx.Err()
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
			b.rx.Fail(err)
			return b.rx.Err()
		}
		return nil
	case <-t.C:
		b.rx.Fail(fmt.Errorf("write stalled for %v", limit.Round(time.Millisecond)))
		return b.rx.Err()
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closed:
		return ErrClosed
	}
}
