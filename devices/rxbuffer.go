package devices

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// RxBuffer holds what a driver's port received until the request in
// progress takes it. Fill (the driver's only reader of the port) appends;
// the request reads, drains and waits on Ready for more. It keeps at most
// max unread bytes, dropping the oldest: they can only be stale, since
// every request starts by draining. The first port failure is kept and
// returned by Err from then on.
type RxBuffer struct {
	mu        sync.Mutex
	buf       []byte
	max       int
	err       error // port failure, wrapping ErrPortFailed
	discarded int   // bytes dropped unread (overflow or Drain), in total
	ready     chan struct{}
}

// NewRxBuffer returns an empty buffer keeping at most max unread bytes.
func NewRxBuffer(max int) *RxBuffer {
	return &RxBuffer{max: max, ready: make(chan struct{}, 1)}
}

// Fill reads port with ReadLoop (reads of bufSize) into the buffer until
// closed is closed or the port fails, which it records (see Err). Drivers
// run it in their own goroutine.
func (r *RxBuffer) Fill(port io.Reader, bufSize int, closed <-chan struct{}) {
	err := ReadLoop(port, bufSize, closed, func(p []byte, _ time.Time) {
		if len(p) > 0 {
			r.Push(p)
		}
	})
	if err != nil {
		r.Fail(err)
	}
}

// Push appends received bytes and wakes a waiting request.
func (r *RxBuffer) Push(p []byte) {
	r.mu.Lock()
	r.buf = append(r.buf, p...)
	if over := len(r.buf) - r.max; over > 0 {
		r.discarded += over
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	r.mu.Unlock()
	r.wake()
}

func (r *RxBuffer) wake() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

// Fail records a port failure, wrapped in ErrPortFailed, and wakes a
// waiting request; the first failure stays.
func (r *RxBuffer) Fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = fmt.Errorf("%w: %w", ErrPortFailed, err)
	}
	r.mu.Unlock()
	r.wake()
}

// Err returns the port failure, if any.
func (r *RxBuffer) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Ready receives a value after bytes arrive or the port fails (at most one
// value waits: check the buffer again after every receive).
func (r *RxBuffer) Ready() <-chan struct{} { return r.ready }

// Drain discards the unread bytes.
func (r *RxBuffer) Drain() {
	r.mu.Lock()
	r.discarded += len(r.buf)
	r.buf = r.buf[:0]
	r.mu.Unlock()
}

// Discarded counts the bytes dropped unread so far, by Drain or because
// the buffer was full.
func (r *RxBuffer) Discarded() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.discarded
}

// Len returns how many bytes are unread.
func (r *RxBuffer) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.buf)
}

// Next takes the next unread byte. With none, ok is false and err is the
// port failure, if any.
func (r *RxBuffer) Next() (b byte, ok bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 {
		return 0, false, r.err
	}
	b = r.buf[0]
	r.buf = r.buf[1:]
	return b, true, nil
}

// Consume calls take with the unread bytes (valid only during the call;
// Push waits for it) and removes the first n it returns.
func (r *RxBuffer) Consume(take func(p []byte) (n int)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := take(r.buf)
	r.buf = append(r.buf[:0], r.buf[n:]...)
}
