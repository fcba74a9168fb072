package payterm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"onecard/devices"
)

// Why a request went unacknowledged.
var (
	errNoACK = errors.New("no ACK")
	errNAK   = errors.New("the terminal kept answering NAK: the line corrupts frames")
)

// waiter is one request waiting for its ACK and its answer.
type waiter struct {
	seq byte
	// ref, when set, also takes outcomes (APPROVED, DECLINED, VOIDED) for
	// this reference whatever their SEQ: a sale's outcome comes with the
	// SEQ of the SALE that started it, which may be another host's, or
	// this host's before a restart.
	ref   string
	acks  chan Type   // ACK or NAK
	msgs  chan answer // answers
	early []answer    // answers that came before the ACK
}

// answer is a response frame that passed its CRC: parsed, or why not.
type answer struct {
	m   Message
	err error
}

// lineStats counts what the line brought that was not a good frame.
type lineStats struct {
	garbage int // bytes outside any frame
	damaged int // frames with a bad CRC, ETX or LEN
	bad     int // good frames with a malformed message
}

// since describes what the line brought after mark, for error messages.
func (s lineStats) since(mark lineStats) string {
	g, d, b := s.garbage-mark.garbage, s.damaged-mark.damaged, s.bad-mark.bad
	if g == 0 && d == 0 && b == 0 {
		return "the line was silent"
	}
	return fmt.Sprintf("the line carried %d garbage bytes, %d damaged frame(s), %d malformed message(s)", g, d, b)
}

// readLoop is the only reader of the port: io.ReadWriter has no deadlines,
// so reads happen here and requests wait on their waiters instead.
func (t *Terminal) readLoop() {
	var rx []byte
	err := devices.ReadLoop(t.port, 512, t.closed, func(p []byte, _ time.Time) {
		if len(p) > 0 {
			rx = t.decode(append(rx, p...))
		}
	})
	if err != nil {
		t.fail(err)
	}
}

// decode handles the frames in rx and returns what is left of it.
func (t *Terminal) decode(rx []byte) []byte {
	for {
		f, n, err := Decode(rx)
		rx = append(rx[:0], rx[n:]...)
		switch {
		case errors.Is(err, ErrIncomplete):
			t.count(func(s *lineStats) { s.garbage += n })
			return rx
		case err != nil:
			t.count(func(s *lineStats) { s.damaged++ })
			if !errors.Is(err, ErrLength) {
				// A NAK gets the frame again sooner than the terminal's ACK
				// timeout would.
				t.control(NakMsg{}, f.Seq)
			}
		default:
			t.count(func(s *lineStats) { s.garbage += n - len(f.Body) - Overhead })
			t.onFrame(f)
		}
	}
}

func (t *Terminal) count(f func(*lineStats)) {
	t.mu.Lock()
	f(&t.line)
	t.mu.Unlock()
}

func (t *Terminal) stats() lineStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.line
}

// onFrame dispatches a good frame from the terminal.
func (t *Terminal) onFrame(f Frame) {
	switch {
	case f.Type.Link():
		if len(f.Body) != 0 {
			t.count(func(s *lineStats) { s.bad++ })
			return
		}
		t.mu.Lock()
		// An ACK names the frame it acknowledges; a NAK asks for the frame
		// in flight, whatever its SEQ says.
		if w := t.inflight; w != nil && (f.Type == TypeNAK || f.Seq == w.seq) {
			select {
			case w.acks <- f.Type:
			default:
			}
		}
		t.mu.Unlock()
	case f.Type.Response():
		// Acknowledged even when unexpected or malformed: the CRC says it
		// arrived as sent, and the terminal should stop sending it.
		t.control(AckMsg{}, f.Seq)
		m, err := Unmarshal(f)
		if err != nil {
			t.count(func(s *lineStats) { s.bad++ })
		}
		t.dispatch(f.Seq, answer{m: m, err: err})
	default:
		// A request type from the terminal: not in the protocol.
		t.count(func(s *lineStats) { s.bad++ })
	}
}

// dispatch hands an answer to the waiters it is for.
func (t *Terminal) dispatch(seq byte, a answer) {
	ref, outcome := "", false
	if a.err == nil {
		ref, outcome = final(a.m)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for w := range t.waiters {
		if w.seq == seq || outcome && w.ref == ref {
			select {
			case w.msgs <- a:
			default:
			}
		}
	}
}

// register makes a waiter with a SEQ no other waiter holds.
func (t *Terminal) register(ref string) *waiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	used := make(map[byte]bool, len(t.waiters))
	for w := range t.waiters {
		used[w.seq] = true
	}
	for {
		t.seq++
		if t.seq != 0 && !used[t.seq] {
			break
		}
	}
	w := &waiter{seq: t.seq, ref: ref, acks: make(chan Type, 4), msgs: make(chan answer, 8)}
	t.waiters[w] = struct{}{}
	return w
}

func (t *Terminal) unregister(w *waiter) {
	t.mu.Lock()
	delete(t.waiters, w)
	t.mu.Unlock()
}

// control queues an ACK or NAK without waiting: the reader goroutine must
// not block, and a lost one costs only a resend.
func (t *Terminal) control(m Message, seq byte) {
	b, _ := Marshal(seq, m)
	select {
	case t.writes <- outFrame{b: b}:
	default:
	}
}

// outFrame is a frame for the writer goroutine; done, if set, gets the
// result of the write.
type outFrame struct {
	b    []byte
	done chan error
}

// writeLoop writes whole frames one after another, so that frames never
// interleave; a port write cannot be interrupted, so requests wait for it
// here only as long as a serial port could need.
func (t *Terminal) writeLoop() {
	for {
		select {
		case <-t.done:
			return
		case o := <-t.writes:
			_, err := t.port.Write(o.b)
			if o.done != nil {
				o.done <- err
			}
			if err != nil {
				t.fail(err)
				return
			}
		}
	}
}

// write sends a frame and waits until it is written.
func (t *Terminal) write(ctx context.Context, b []byte) error {
	done := make(chan error, 1)
	select {
	case t.writes <- outFrame{b: b, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	case <-t.done:
		return t.Err()
	}
	limit := t.opts.AckTimeout + t.wire(len(b)+MaxFrame)
	tm := time.NewTimer(limit)
	defer tm.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: %w", devices.ErrPortFailed, err)
		}
		return nil
	case <-tm.C:
		return fmt.Errorf("write stalled for %v: %w", limit, devices.ErrTimeout)
	case <-ctx.Done():
		return ctx.Err()
	case <-t.done:
		return t.Err()
	}
}

// send delivers one request: it writes the frame and waits for its ACK,
// writing it again after a NAK or AckTimeout of silence, Retries times.
// Requests go one at a time (stop-and-wait); answers may come in any
// order later.
func (t *Terminal) send(ctx context.Context, w *waiter, frame []byte) error {
	select {
	case t.link <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-t.done:
		return t.Err()
	}
	defer func() { <-t.link }()
	t.mu.Lock()
	t.inflight = w
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.inflight = nil
		t.mu.Unlock()
	}()

	mark := t.stats()
	why := errNoACK
	tries := t.opts.Retries + 1
	for range tries {
		for len(w.acks) > 0 {
			<-w.acks
		}
		if err := t.write(ctx, frame); err != nil {
			return err
		}
		tm := time.NewTimer(t.opts.AckTimeout + t.wire(len(frame)+Overhead))
		select {
		case typ := <-w.acks:
			tm.Stop()
			if typ == TypeACK {
				return nil
			}
			why = errNAK
		case a := <-w.msgs:
			// An answer before the ACK: the ACK was lost on the way.
			tm.Stop()
			w.early = append(w.early, a)
			return nil
		case <-tm.C:
			why = errNoACK
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		case <-t.done:
			tm.Stop()
			return t.Err()
		}
	}
	err := fmt.Errorf("%w after %d tries (%s)", why, tries, t.stats().since(mark))
	if why == errNoACK {
		err = fmt.Errorf("%w: %w", err, devices.ErrTimeout)
	}
	return err
}

// await waits for the next answer for w until deadline.
func (t *Terminal) await(ctx context.Context, w *waiter, deadline time.Time, mark lineStats) (Message, error) {
	if len(w.early) > 0 {
		a := w.early[0]
		w.early = w.early[1:]
		return a.m, a.err
	}
	tm := time.NewTimer(time.Until(deadline))
	defer tm.Stop()
	select {
	case a := <-w.msgs:
		return a.m, a.err
	case <-tm.C:
		return nil, fmt.Errorf("no answer in time (%s): %w", t.stats().since(mark), devices.ErrTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.done:
		return nil, t.Err()
	}
}

// request sends m and returns the first answer within wait.
func (t *Terminal) request(ctx context.Context, m Message, ref string, wait time.Duration) (Message, error) {
	w := t.register(ref)
	defer t.unregister(w)
	frame, err := Marshal(w.seq, m)
	if err != nil {
		return nil, err
	}
	mark := t.stats()
	if err := t.send(ctx, w, frame); err != nil {
		return nil, err
	}
	return t.await(ctx, w, time.Now().Add(wait), mark)
}

// wire is how long n bytes take on the line (8N1: 10 bits a byte).
func (t *Terminal) wire(n int) time.Duration {
	return time.Duration(n) * 10 * time.Second / time.Duration(t.opts.Baud)
}
