package paytermsim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"onecard/devices/payterm"
)

// session is a sale in progress: the customer at the terminal.
type session struct {
	e    *Entry
	seq  byte          // of the SALE that started it: the outcome's SEQ
	stop chan struct{} // closed by CANCEL
}

// handle executes a request and returns the frames to answer with (none
// for a SALE that starts: its outcome comes later). Everything a request
// changes is in the journal before this returns, so before the ACK.
func (s *Sim) handle(ctx context.Context, f payterm.Frame) [][]byte {
	reply := func(m payterm.Message) [][]byte {
		b, err := payterm.Marshal(f.Seq, m)
		if err != nil { // a bug here, not the host's fault
			s.log.Error("paytermsim: cannot encode the answer", "err", err)
			b, _ = payterm.Marshal(f.Seq, payterm.ErrorMsg{Code: payterm.CodeOutOfService, Text: "internal error"})
		}
		return [][]byte{b}
	}
	if !f.Type.Request() {
		return reply(payterm.ErrorMsg{Code: payterm.CodeUnknownType, Text: fmt.Sprintf("%v is not a request", f.Type)})
	}
	m, err := payterm.Unmarshal(f)
	if err != nil {
		code := payterm.CodeMalformed
		switch {
		case errors.Is(err, payterm.ErrBadRef):
			code = payterm.CodeBadRef
		case errors.Is(err, payterm.ErrBadAmount):
			code = payterm.CodeBadAmount
		case errors.Is(err, payterm.ErrCurrency):
			code = payterm.CodeCurrency
		}
		s.log.Info("paytermsim: malformed request", "err", err)
		return reply(payterm.ErrorMsg{Code: code, Text: truncate(err.Error(), payterm.MaxText)})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m := m.(type) {
	case payterm.SaleMsg:
		return s.sell(ctx, f.Seq, m, reply)
	case payterm.QueryMsg:
		if e := s.j.find(m.Ref); e != nil {
			return reply(e.message())
		}
		return reply(payterm.NotFoundMsg{Ref: m.Ref})
	case payterm.CancelMsg:
		return s.cancel(m.Ref, reply)
	case payterm.StatusMsg:
		st := payterm.StatusReplyMsg{
			State: payterm.Idle, Batch: s.j.Batch,
			JournalUsed: uint16(len(s.j.Entries)), JournalSize: uint16(min(s.j.size, 0xFFFF)),
			Protocol: payterm.ProtocolVersion, Version: s.opt.Version,
		}
		if s.sale != nil {
			st.State, st.Ref = payterm.Selling, s.sale.e.Ref
		}
		return reply(st)
	}
	return nil
}

func (s *Sim) sell(ctx context.Context, seq byte, m payterm.SaleMsg, reply func(payterm.Message) [][]byte) [][]byte {
	if e := s.j.find(m.Ref); e != nil {
		if e.Amount != m.Amount {
			return reply(payterm.ErrorMsg{Code: payterm.CodeRefConflict, Text: fmt.Sprintf("reference used for %d fen", e.Amount)})
		}
		// The same sale again: its outcome, or that it goes on. Never a
		// second charge.
		s.log.Info("paytermsim: sale repeated", "ref", m.Ref, "state", e.State)
		return reply(e.message())
	}
	if s.sale != nil {
		return reply(payterm.BusyMsg{Ref: m.Ref})
	}
	e := &Entry{Ref: m.Ref, Amount: m.Amount, State: InProgress, Phase: payterm.PhaseWaitCard}
	s.j.add(e)
	if err := s.j.save(); err != nil {
		s.j.remove(e)
		s.log.Error("paytermsim: sale refused: journal not saved", "err", err)
		return reply(payterm.ErrorMsg{Code: payterm.CodeOutOfService, Text: "journal cannot be written"})
	}
	sess := &session{e: e, seq: seq, stop: make(chan struct{})}
	s.sale = sess
	s.log.Info("paytermsim: sale", "ref", m.Ref, "amount", m.Amount, "mode", s.mode)
	delay := s.delay
	s.customers.Go(func() { s.customer(ctx, sess, delay) })
	return nil
}

func (s *Sim) cancel(ref string, reply func(payterm.Message) [][]byte) [][]byte {
	e := s.j.find(ref)
	if e == nil {
		return reply(payterm.NotFoundMsg{Ref: ref})
	}
	switch e.State {
	case InProgress:
		if e.Phase != payterm.PhaseWaitCard || s.sale == nil || s.sale.e != e {
			return reply(e.message())
		}
		sess := s.sale
		s.finish(sess, func() {
			e.State, e.Phase, e.Time = Declined, 0, time.Now()
			e.Reason, e.Text = payterm.ReasonHostCancel, payterm.ReasonText(payterm.ReasonHostCancel)
		})
		s.log.Info("paytermsim: sale cancelled", "ref", ref)
		// The CANCEL's answer, then the SALE's outcome.
		out := reply(e.message())
		if b, err := payterm.Marshal(sess.seq, e.message()); err == nil {
			out = append(out, b)
		}
		return out
	case Approved:
		e.State, e.VoidTrace, e.VoidTime = Voided, s.j.nextTrace(), time.Now()
		s.save()
		s.log.Info("paytermsim: sale voided", "ref", ref, "void_trace", e.VoidTrace)
	}
	return reply(e.message())
}

// finish ends sess with change, recorded in the journal. s.mu must be held.
func (s *Sim) finish(sess *session, change func()) {
	change()
	close(sess.stop)
	s.sale = nil
	s.save()
}

// customer is the person at the terminal for sess: the card comes after
// delay, unless the mode is Timeout; then the sale ends as the mode says.
func (s *Sim) customer(ctx context.Context, sess *session, delay time.Duration) {
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-sess.stop:
		t.Stop()
		return
	case <-ctx.Done():
		t.Stop()
		s.abandon(sess)
		return
	}
	s.mu.Lock()
	for s.mode == Timeout && s.sale == sess {
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-sess.stop:
			return
		case <-ctx.Done():
			s.abandon(sess)
			return
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	if s.sale != sess {
		return
	}
	e, mode := sess.e, s.mode
	s.finish(sess, func() {
		e.Phase, e.Time = 0, time.Now()
		if mode == Decline {
			e.State, e.Reason, e.Text = Declined, s.reason, s.text
			return
		}
		e.State, e.Auth, e.Scheme, e.Last4 = Approved, digits(6), payterm.SchemeUnionPay, digits(4)
		e.Trace, e.Batch = s.j.nextTrace(), s.j.Batch
		s.j.Charges++
	})
	s.log.Info("paytermsim: sale ended", "ref", e.Ref, "state", e.State, "reason", e.Reason, "trace", e.Trace)
	if mode == PowerLoss {
		s.offUntil = time.Now().Add(s.reboot)
		s.outbox = nil
		s.setMode(Approve)
		s.log.Info("paytermsim: power lost after the approval was recorded", "ref", e.Ref, "reboot", s.reboot)
		s.wake()
		return
	}
	b, err := payterm.Marshal(sess.seq, e.message())
	if err != nil {
		s.log.Error("paytermsim: cannot encode the outcome", "err", err)
		return
	}
	s.post(b)
}

// abandon ends a sale whose terminal was switched off (Serve ended) while
// the customer was still at it: nothing was authorised.
func (s *Sim) abandon(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sale != sess {
		return
	}
	e := sess.e
	s.finish(sess, func() {
		e.State, e.Phase, e.Time = Declined, 0, time.Now()
		e.Reason, e.Text = payterm.ReasonPowerLost, payterm.ReasonText(payterm.ReasonPowerLost)
	})
}

func digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + rand.IntN(10))
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		n--
	}
	return s[:n]
}
