// Package terminal connects billing to a bank-card payment terminal on a
// serial port (devices/payterm, docs/payterm.md), reconnecting when the
// port goes away, and translates its outcomes into billing's terms.
package terminal

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"onecard/billing"
	"onecard/devices"
	"onecard/devices/payterm"
)

// Terminal is the payment terminal as billing sees it: the driver of the
// session the serial port has open, if any.
type Terminal struct {
	mu  sync.Mutex
	cur *payterm.Terminal
}

// ErrNotConnected is returned while the terminal's port is closed.
var ErrNotConnected = errors.New("terminal: the payment terminal is not connected")

func (t *Terminal) get() *payterm.Terminal {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur
}

// Ready reports whether the terminal's port is open.
func (t *Terminal) Ready() bool { return t.get() != nil }

// Sale charges on the terminal. Not connected: the outcome is unknown
// (billing has recorded the attempt; the resolver asks again later).
func (t *Terminal) Sale(ctx context.Context, ref string, amount int64) (billing.TerminalResult, error) {
	d := t.get()
	if d == nil {
		return billing.TerminalResult{State: "unknown", Reason: ErrNotConnected.Error()}, ErrNotConnected
	}
	r, err := d.Sale(ctx, ref, amount)
	return result(r), err
}

// Query asks the terminal's journal about a reference.
func (t *Terminal) Query(ctx context.Context, ref string) (billing.TerminalResult, error) {
	d := t.get()
	if d == nil {
		return billing.TerminalResult{}, ErrNotConnected
	}
	r, err := d.Query(ctx, ref)
	if err != nil {
		return billing.TerminalResult{}, err
	}
	return result(r), nil
}

func result(r payterm.Result) billing.TerminalResult {
	out := billing.TerminalResult{AuthCode: r.Auth, Last4: r.Last4, Reason: r.Reason}
	if r.ReasonText != "" {
		out.Reason += " " + r.ReasonText
	}
	switch r.State {
	case payterm.Approved:
		out.State = "approved"
	case payterm.Declined, payterm.Voided: // no money kept
		out.State = "declined"
	case payterm.NotFound:
		out.State = "not_found"
	case payterm.InProgress:
		out.State = "in_progress"
	default:
		out.State = "unknown"
	}
	return out
}

// Open keeps the payment terminal on path connected until ctx ends. opts
// are the driver's (nil: payterm.DefaultOpts); its Baud is the port's.
func Open(ctx context.Context, path string, opts *payterm.Opts, log *slog.Logger) *Terminal {
	o := payterm.DefaultOpts
	if opts != nil {
		o = *opts
	}
	baud := o.Baud
	t := &Terminal{}
	open := func() (io.ReadWriteCloser, error) {
		return devices.OpenSerial(devices.SerialConfig{Path: path, Baud: baud, ReadTimeout: 100 * time.Millisecond})
	}
	port := devices.NewPort("payment terminal "+path, open, log)
	go port.Run(ctx, func(ctx context.Context, rw io.ReadWriter) error {
		d := payterm.New(rw, &o)
		defer d.Close()
		st, err := d.Status(ctx)
		if err != nil {
			return err
		}
		t.mu.Lock()
		t.cur = d
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			t.cur = nil
			t.mu.Unlock()
		}()
		log.Info("payment terminal connected", "port", path, "version", st.Version)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.Done():
			return d.Err()
		}
	})
	return t
}
