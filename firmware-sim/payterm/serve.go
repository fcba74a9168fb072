package paytermsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	firmwaresim "onecard/firmware-sim"
	"time"

	"onecard/devices/payterm"
)

// dupWindow is how long a frame repeated with the same TYPE, SEQ and body
// counts as a resend of the last request (docs/payterm.md).
const dupWindow = 3 * time.Second

// event is what the frame reader hands the serving loop.
type event struct {
	f       payterm.Frame
	damaged bool  // a frame with a bad CRC or ETX: f holds its TYPE and SEQ
	ioErr   error // the link failed
}

// Serve answers the host on rw until ctx is done (it then returns ctx's
// error) or rw fails. When ctx ends, Serve sets a past deadline on rw if rw
// has SetDeadline or SetReadDeadline, to stop its reader and return at
// once; otherwise a read in progress holds a goroutine until rw is closed.
// A sale still in progress when Serve returns is declined (reason P0), as
// if the terminal had been switched off.
func (s *Sim) Serve(ctx context.Context, rw io.ReadWriter) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	events := make(chan event)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		readFrames(rw, events, ctx.Done(), s.opt.Baud)
	}()
	unblocked := firmwaresim.UnblockReads(ctx, rw)

	s.mu.Lock()
	s.outbox = nil
	s.mu.Unlock()
	l := &link{s: s, rw: rw}
	err := l.run(ctx, events)
	cancel()
	s.customers.Wait()
	if unblocked() {
		<-readerDone
	}
	if parent.Err() != nil {
		return parent.Err()
	}
	return err
}

// readFrames parses frames from r until r fails. With baud set, a frame is
// not acted on before it could have arrived on a real line: a pty delivers
// it at once, a UART at 10 bits a byte.
func readFrames(r io.Reader, events chan<- event, done <-chan struct{}, baud int) {
	buf := make([]byte, 512)
	var rx []byte
	var first time.Time // when rx[0] arrived, or could have
	emit := func(ev event) bool {
		select {
		case events <- ev:
			return true
		case <-done:
			return false
		}
	}
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if len(rx) == 0 {
				first = time.Now()
			}
			rx = append(rx, buf[:n]...)
		}
		for len(rx) > 0 {
			f, used, derr := payterm.Decode(rx)
			if errors.Is(derr, payterm.ErrIncomplete) {
				rx = append(rx[:0], rx[used:]...)
				break
			}
			if baud > 0 {
				first = first.Add(time.Duration(used) * 10 * time.Second / time.Duration(baud))
				if d := time.Until(first); d > 0 {
					time.Sleep(d)
				}
			}
			rx = append(rx[:0], rx[used:]...)
			if derr != nil && errors.Is(derr, payterm.ErrLength) {
				continue // no TYPE or SEQ to NAK
			}
			if !emit(event{f: f, damaged: derr != nil}) {
				return
			}
		}
		if err != nil {
			emit(event{ioErr: err})
			return
		}
	}
}

// link is one Serve call's state: the frames to send, stop-and-wait, and
// the last request, to recognise a resend.
type link struct {
	s     *Sim
	rw    io.ReadWriter
	queue [][]byte // data frames to send; queue[0] is in flight once sent
	sent  bool     // queue[0] was sent and waits for its ACK
	tries int
	due   time.Time // when to send queue[0] again
	last  struct {
		f    payterm.Frame
		at   time.Time
		resp [][]byte
	}
	wasOff bool
}

func (l *link) run(ctx context.Context, events <-chan event) error {
	s := l.s
	resend := time.NewTimer(time.Hour)
	defer resend.Stop()
	for {
		var timer <-chan time.Time
		if l.sent {
			resend.Reset(time.Until(l.due))
			timer = resend.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-events:
			if ev.ioErr != nil {
				return fmt.Errorf("paytermsim: read: %w", ev.ioErr)
			}
			if err := l.onEvent(ctx, ev); err != nil {
				return err
			}
		case <-s.kick:
			s.mu.Lock()
			off := s.off()
			out := s.outbox
			s.outbox = nil
			s.mu.Unlock()
			if off {
				l.powerOff()
				continue
			}
			for _, b := range out {
				// A SALE's outcome is its answer, to send again if the SALE
				// comes again.
				if l.last.f.Type == payterm.TypeSale && l.last.f.Seq == b[3] && l.last.resp == nil {
					l.last.resp = [][]byte{b}
				}
			}
			l.queue = append(l.queue, out...)
		case <-timer:
			l.sent = false // no ACK: flush sends it again or drops it
		}
		if err := l.flush(ctx); err != nil {
			return err
		}
	}
}

// powerOff forgets what the link was doing: the terminal's RAM is gone.
func (l *link) powerOff() {
	l.queue, l.sent, l.tries = nil, false, 0
	l.last.f, l.last.resp = payterm.Frame{}, nil
	l.wasOff = true
}

func (l *link) pop() {
	l.queue = l.queue[1:]
	l.sent, l.tries = false, 0
}

// flush sends the head of the queue if it is not in flight, dropping it
// once it has had all its tries.
func (l *link) flush(ctx context.Context) error {
	s := l.s
	for !l.sent && len(l.queue) > 0 {
		s.mu.Lock()
		off := s.off()
		s.mu.Unlock()
		if off {
			l.powerOff()
			return nil
		}
		if l.tries > s.opt.Retries {
			s.log.Info("paytermsim: the host never acknowledged a frame; dropped", "type", payterm.Type(l.queue[0][2]), "seq", l.queue[0][3])
			l.pop()
			continue
		}
		l.tries++
		l.sent = true
		if err := l.write(ctx, l.queue[0]); err != nil {
			return err
		}
		l.due = time.Now().Add(s.opt.AckTimeout + firmwaresim.WireTime(MaxWire, s.opt.Baud))
	}
	return nil
}

// MaxWire is the longest exchange the ACK timeout allows for on the wire:
// a frame out and an ACK back.
const MaxWire = payterm.MaxFrame + payterm.Overhead

func (l *link) onEvent(ctx context.Context, ev event) error {
	s := l.s
	s.mu.Lock()
	off := s.off()
	s.mu.Unlock()
	if off {
		l.powerOff()
		s.log.Debug("paytermsim: power off, frame ignored", "type", ev.f.Type, "seq", ev.f.Seq)
		return nil
	}
	if l.wasOff {
		l.wasOff = false
		s.log.Info("paytermsim: rebooted")
	}
	f := ev.f
	if ev.damaged {
		s.log.Debug("paytermsim: damaged frame, NAK", "seq", f.Seq)
		return l.control(ctx, payterm.NakMsg{}, f.Seq)
	}
	s.log.Debug("paytermsim: frame", "type", f.Type, "seq", f.Seq, "body", fmt.Sprintf("% X", f.Body))
	switch f.Type {
	case payterm.TypeACK:
		if l.sent && len(f.Body) == 0 && f.Seq == l.queue[0][3] {
			l.pop()
		}
		return nil
	case payterm.TypeNAK:
		if l.sent {
			l.sent = false // flush sends it again; it counts as a try
		}
		return nil
	}
	s.mu.Lock()
	drop := s.drop > 0
	if drop {
		s.drop--
	}
	s.mu.Unlock()
	if drop {
		s.log.Info("paytermsim: fault: request dropped", "type", f.Type, "seq", f.Seq)
		return nil
	}
	if l.last.f.Type == f.Type && l.last.f.Seq == f.Seq && bytes.Equal(l.last.f.Body, f.Body) && time.Since(l.last.at) < dupWindow {
		s.log.Debug("paytermsim: resent request, ACKed again", "type", f.Type, "seq", f.Seq)
		if err := l.control(ctx, payterm.AckMsg{}, f.Seq); err != nil {
			return err
		}
		l.queue = append(l.queue, l.last.resp...)
		return nil
	}
	resp := s.handle(ctx, f)
	l.last.f, l.last.at, l.last.resp = f, time.Now(), resp
	if err := l.control(ctx, payterm.AckMsg{}, f.Seq); err != nil {
		return err
	}
	l.queue = append(l.queue, resp...)
	return nil
}

// control sends an ACK or a NAK at once: they are never queued, nor
// acknowledged.
func (l *link) control(ctx context.Context, m payterm.Message, seq byte) error {
	b, err := payterm.Marshal(seq, m)
	if err != nil {
		return err
	}
	return l.write(ctx, b)
}

// write sends a frame at the line's pace, as random bytes in Garbage mode.
func (l *link) write(ctx context.Context, frame []byte) error {
	s := l.s
	s.mu.Lock()
	garbage := s.mode == Garbage
	s.mu.Unlock()
	if garbage {
		junk := make([]byte, len(frame))
		for i := range junk {
			junk[i] = byte(rand.Uint32())
		}
		s.log.Debug("paytermsim: garbage instead of a frame", "type", payterm.Type(frame[2]), "bytes", len(junk))
		frame = junk
	}
	if err := firmwaresim.Pace(ctx, l.rw, frame, s.opt.Baud); err != nil {
		return fmt.Errorf("paytermsim: write: %w", err)
	}
	return nil
}
