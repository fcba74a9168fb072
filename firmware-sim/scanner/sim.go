package scannersim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	firmwaresim "onecard/firmware-sim"
	"sync"
	"time"
)

// DefaultBaud is the factory speed of most serial barcode scanners.
const DefaultBaud = 9600

// Options configure a Sim. The zero value is a scanner at 9600 baud that
// ends each code with CR LF and sends the next at once.
type Options struct {
	// Baud paces the line at this rate, 10 bits a byte: 0 means
	// DefaultBaud, a negative rate sends at once.
	Baud int
	// Gap is the pause after each code, before the next.
	Gap time.Duration
	// Prefix is sent before each code: empty, or an AIM symbology
	// identifier such as "]C0".
	Prefix string
	// Suffix ends each code: "\r\n" when empty; "\r" and "\n" are the
	// other common settings.
	Suffix string
	// Log receives each code sent and each fault at info; nil discards.
	Log *slog.Logger
}

// item is what goes out next: a code, or garbage.
type item struct {
	code    string
	garbage []byte
}

// Sim is a simulated barcode scanner. Its methods are safe for concurrent
// use; Serve one link at a time.
type Sim struct {
	opt Options
	log *slog.Logger

	mu       sync.Mutex
	queue    []item
	inFlight bool
	scanned  int           // codes sent
	garbage  int           // garbage bytes sent
	changed  chan struct{} // closed (and replaced) when the queue grows or an item is sent
}

// New returns a scanner with nothing to send.
func New(o Options) *Sim {
	if o.Baud == 0 {
		o.Baud = DefaultBaud
	}
	if o.Suffix == "" {
		o.Suffix = "\r\n"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Sim{opt: o, log: o.Log, changed: make(chan struct{})}
}

// Scan queues codes to be scanned, in order. A code is sent as it is, so
// that a test can send what a scanner should not.
func (s *Sim) Scan(codes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range codes {
		s.queue = append(s.queue, item{code: c})
	}
	s.signal()
}

// InjectGarbage queues raw bytes, sent as they are after the codes queued
// before them.
func (s *Sim) InjectGarbage(b []byte) {
	if len(b) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, item{garbage: append([]byte(nil), b...)})
	s.signal()
}

// signal wakes whoever waits for a change. s.mu must be held.
func (s *Sim) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// State is a snapshot of the scanner.
type State struct {
	Queued  int // codes and garbage waiting to be sent, the one in flight included
	Scanned int // codes sent
	Garbage int // garbage bytes sent
}

// State returns the scanner's state.
func (s *Sim) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Queued: len(s.queue), Scanned: s.scanned, Garbage: s.garbage}
	if s.inFlight {
		st.Queued++
	}
	return st
}

// Wait waits until everything queued has been sent (its last byte written
// to the link) or ctx ends.
func (s *Sim) Wait(ctx context.Context) error {
	for {
		s.mu.Lock()
		idle := len(s.queue) == 0 && !s.inFlight
		changed := s.changed
		s.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("scannersim: %d left to send: %w", s.State().Queued, ctx.Err())
		case <-changed:
		}
	}
}

// Serve sends what is queued, and what is queued later, on w until ctx is
// done (it then returns ctx's error) or a write fails. When ctx ends,
// Serve sets a past deadline on w if w has SetDeadline or
// SetWriteDeadline, to stop a write held up by a full buffer (nobody
// reading the port) and return at once; otherwise such a write holds
// Serve until w is closed. What was cut off in the middle is lost, as by a
// scanner switched off; what was still queued waits for the next Serve.
func (s *Sim) Serve(ctx context.Context, w io.Writer) error {
	deadline := func(t time.Time) {
		switch d := w.(type) {
		case interface{ SetDeadline(time.Time) error }:
			d.SetDeadline(t)
		case interface{ SetWriteDeadline(time.Time) error }:
			d.SetWriteDeadline(t)
		}
	}
	deadline(time.Time{}) // the last Serve's, if any
	stop := context.AfterFunc(ctx, func() { deadline(time.Now()) })
	defer stop()
	defer func() {
		s.mu.Lock()
		s.inFlight = false
		s.signal()
		s.mu.Unlock()
	}()
	var next time.Time // when the gap after the last code ends
	for {
		it, err := s.take(ctx)
		if err != nil {
			return err
		}
		var b []byte
		if it.garbage != nil {
			b = it.garbage
			s.log.Info("scannersim: fault: garbage", "bytes", fmt.Sprintf("% X", b))
		} else {
			if err := firmwaresim.Sleep(ctx, time.Until(next)); err != nil {
				s.unTake(it)
				return err
			}
			b = []byte(s.opt.Prefix + it.code + s.opt.Suffix)
		}
		if err := firmwaresim.Pace(ctx, w, b, s.opt.Baud); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("scannersim: write: %w", err)
		}
		if it.garbage == nil {
			s.log.Info("scannersim: scanned", "code", it.code)
			next = time.Now().Add(s.opt.Gap)
		}
		s.mu.Lock()
		s.inFlight = false
		if it.garbage != nil {
			s.garbage += len(b)
		} else {
			s.scanned++
		}
		s.signal()
		s.mu.Unlock()
	}
}

// take waits for the next item and marks it in flight.
func (s *Sim) take(ctx context.Context) (item, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			it := s.queue[0]
			s.queue = s.queue[1:]
			s.inFlight = true
			s.mu.Unlock()
			return it, nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return item{}, ctx.Err()
		case <-changed:
		}
	}
}

// unTake puts back an item taken and not sent.
func (s *Sim) unTake(it item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append([]item{it}, s.queue...)
	s.inFlight = false
	s.signal()
}
