package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"onecard/devices"
)

// ErrClosed: the Scanner was closed.
var ErrClosed = errors.New("driver closed")

// Scan is one code read by the scanner.
type Scan struct {
	// Code is the line as the scanner sent it, without its terminator or
	// symbology identifier; Normalize it before comparing.
	Code string
	// Symbology is the AIM symbology identifier taken off the code
	// ("]C0" Code 128, "]E0" EAN-13, "]Q1" QR code…) with Opts.AIM; else
	// empty.
	Symbology string
	// At is when the line's end arrived.
	At time.Time
}

// Opts configures a Scanner. Zero fields take their value from
// DefaultOpts.
type Opts struct {
	// MaxLen is the longest line taken, in bytes; longer ones are
	// rejected (ErrTooLong).
	MaxLen int
	// AIM takes an AIM symbology identifier ("]" and two letters or
	// digits) off the start of each line that has one, into
	// Scan.Symbology. Set it when the scanner is set to send them: a code
	// of its own may begin with "]".
	AIM bool
	// LineGap is how long the start of a line may wait for the rest: a
	// line begun and then silent for longer is rejected (ErrUnterminated)
	// when the next bytes come or a read times out, so that line noise
	// cannot spoil the next code. A scanner sends a code in one burst.
	LineGap time.Duration
	// Queue is how many lines wait for Next at most; lines beyond are
	// dropped and reported (ErrOverrun).
	Queue int
}

// DefaultOpts suits a handheld scanner sending tracking numbers, QR codes
// of a few dozen characters, and no symbology identifiers.
var DefaultOpts = Opts{
	MaxLen:  128,
	LineGap: 500 * time.Millisecond,
	Queue:   1024,
}

// Scanner is a barcode scanner on a serial port (or a pty, or one end of
// a net.Pipe). It only reads: a scanner in serial mode needs no commands.
// Its methods are safe for concurrent use.
//
// A failed port stops a Scanner for good: a read error other than io.EOF
// (tarm/serial's "no data yet"), or a port that hung up. Done is then
// closed, and Next, once the lines read before are taken, returns an error
// wrapping devices.ErrPortFailed: close the port, open it again and make a
// new Scanner (devices.Port does the reopening).
type Scanner struct {
	port io.Reader
	opts Opts

	closed    chan struct{} // Close was called
	closeOnce sync.Once
	done      chan struct{} // closed, or the port failed
	doneOnce  sync.Once

	mu     sync.Mutex
	queue  []event
	err    error         // why done
	notify chan struct{} // a line was queued
}

// New returns a driver for the scanner on port; nil opts means
// DefaultOpts. It starts a goroutine that reads port until the port fails
// or, after Close, its next read returns: close the port to end it.
func New(port io.Reader, opts *Opts) *Scanner {
	o := DefaultOpts
	if opts != nil {
		o.AIM = opts.AIM
		if opts.MaxLen > 0 {
			o.MaxLen = opts.MaxLen
		}
		if opts.LineGap > 0 {
			o.LineGap = opts.LineGap
		}
		if opts.Queue > 0 {
			o.Queue = opts.Queue
		}
	}
	s := &Scanner{
		port:   port,
		opts:   o,
		closed: make(chan struct{}),
		done:   make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	go s.readLoop()
	return s
}

// Next returns the next code scanned, waiting for it until ctx ends. A line
// the scanner should not have sent comes as an error wrapping ErrRejected
// (a *LineError): skip it and call Next again. Any other error is final:
// ErrClosed, ctx's error, or, once the lines read before are taken, the
// port's failure (devices.ErrPortFailed).
func (s *Scanner) Next(ctx context.Context) (Scan, error) {
	for {
		select {
		case <-s.closed:
			return Scan{}, fmt.Errorf("scanner: %w", ErrClosed)
		default:
		}
		s.mu.Lock()
		if len(s.queue) > 0 {
			ev := s.queue[0]
			s.queue[0] = event{}
			s.queue = s.queue[1:]
			more := len(s.queue) > 0
			s.mu.Unlock()
			if more {
				s.wake() // for another caller waiting
			}
			if ev.err != nil {
				return Scan{}, ev.err
			}
			return ev.scan, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return Scan{}, err
		}
		select {
		case <-s.notify:
		case <-s.done:
		case <-ctx.Done():
			return Scan{}, fmt.Errorf("scanner: %w", ctx.Err())
		}
	}
}

// Close stops the driver: Next returns an error wrapping ErrClosed, at once
// and ever after. It does not close the port.
func (s *Scanner) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.stop(fmt.Errorf("scanner: %w", ErrClosed))
	})
	return nil
}

// Done is closed when the Scanner stops reading: Close, or a port failure.
// Err then says why; lines read before may still wait for Next.
func (s *Scanner) Done() <-chan struct{} { return s.done }

// Err is nil while the Scanner reads, then an error wrapping ErrClosed or
// devices.ErrPortFailed.
func (s *Scanner) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Scanner) stop(err error) {
	s.doneOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.done)
	})
}

func (s *Scanner) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// push queues a line for Next. When Queue lines wait already, it is
// dropped and counted in an ErrOverrun after them.
func (s *Scanner) push(ev event) {
	s.mu.Lock()
	if n := len(s.queue); n >= s.opts.Queue {
		if last := s.queue[n-1].err; last != nil && last.Err == ErrOverrun {
			last.Lost++
			last.At = at(ev)
		} else {
			s.queue = append(s.queue, event{err: &LineError{Err: ErrOverrun, Lost: 1, At: at(ev)}})
		}
	} else {
		s.queue = append(s.queue, ev)
	}
	s.mu.Unlock()
	s.wake()
}

func at(ev event) time.Time {
	if ev.err != nil {
		return ev.err.At
	}
	return ev.scan.At
}

// readLoop is the only reader of the port: io.Reader has no deadlines, so
// reads happen here and Next waits on the queue instead.
func (s *Scanner) readLoop() {
	sp := &splitter{maxLen: s.opts.MaxLen, aim: s.opts.AIM}
	err := devices.ReadLoop(s.port, 256, s.closed, func(p []byte, now time.Time) {
		// A line begun long ago is noise, not the start of this one.
		if begun, last := sp.pending(); begun && now.Sub(last) > s.opts.LineGap {
			sp.flush(s.push)
		}
		if len(p) > 0 {
			sp.feed(p, now, s.push)
		}
	})
	if err != nil {
		s.fail(sp, err)
	}
}

// fail stops the Scanner on a port error, after the line it cut off.
func (s *Scanner) fail(sp *splitter, err error) {
	sp.flush(s.push)
	s.stop(fmt.Errorf("scanner: %w: %w", devices.ErrPortFailed, err))
}
