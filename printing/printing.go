// Package printing puts billing's printouts on an ESC/POS printer: it lays
// out the lines in bytes (devices/escpos) and keeps the printer's serial
// port open, reconnecting when it goes away.
package printing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"onecard/billing"
	"onecard/devices"
	"onecard/devices/escpos"
)

// Columns is the width of a line in characters at normal size on 80 mm
// paper (Chinese characters take two).
const Columns = 48

// Encode lays a printout out in ESC/POS.
func Encode(doc []billing.Line) ([]byte, error) {
	b := new(escpos.Builder).Init()
	for _, l := range doc {
		switch {
		case l.Cut:
			b.Feed(3).Cut(escpos.PartialCut)
			continue
		case l.Rule:
			b.Align(escpos.Left).Line(strings.Repeat("-", Columns))
			continue
		}
		switch l.Align {
		case "center":
			b.Align(escpos.Center)
		case "right":
			b.Align(escpos.Right)
		default:
			b.Align(escpos.Left)
		}
		if l.QR != "" {
			b.QR(l.QR, 6, escpos.QRLevelM).LF()
			continue
		}
		if l.Big {
			b.Size(2, 2)
		}
		b.Bold(l.Bold).Line(l.Text)
		if l.Big {
			b.Size(1, 1)
		}
		if l.Bold {
			b.Bold(false)
		}
	}
	return b.Bytes()
}

// ErrNotConnected is returned while the printer's port is closed.
var ErrNotConnected = errors.New("printing: the printer is not connected")

// Printer is a receipt printer on a serial port.
type Printer struct {
	mu      sync.Mutex
	cur     *escpos.Printer
	Port    *devices.Port
	paper   bool      // out of paper, as last asked
	paperAt time.Time // when
}

// Print prints a printout: the printer's status is checked first, and a
// printer out of paper, with its cover open or not answering prints
// nothing and says so.
func (p *Printer) Print(ctx context.Context, doc []billing.Line) error {
	job, err := Encode(doc)
	if err != nil {
		return err
	}
	p.mu.Lock()
	d := p.cur
	p.mu.Unlock()
	if d == nil {
		return ErrNotConnected
	}
	return d.Print(ctx, job)
}

// Status returns the printer's status (for the desk).
func (p *Printer) Status(ctx context.Context) (escpos.Status, error) {
	p.mu.Lock()
	d := p.cur
	p.mu.Unlock()
	if d == nil {
		return escpos.Status{}, ErrNotConnected
	}
	return d.Status(ctx)
}

// PaperOut tells whether the printer said it was out of paper at most two
// seconds ago (screens that warn before a payment ask on every page; the
// serial line is not asked that often). Not connected or not answering is
// not "out of paper": the print job says so if it fails.
func (p *Printer) PaperOut(ctx context.Context) bool {
	p.mu.Lock()
	if time.Since(p.paperAt) < 2*time.Second {
		defer p.mu.Unlock()
		return p.paper
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := p.Status(ctx)
	out := err == nil && st.PaperOut
	p.mu.Lock()
	p.paper, p.paperAt = out, time.Now()
	p.mu.Unlock()
	return out
}

// Open keeps the printer at path connected until ctx ends.
func Open(ctx context.Context, path string, baud int, log *slog.Logger) *Printer {
	open := func() (io.ReadWriteCloser, error) {
		return devices.OpenSerial(devices.SerialConfig{Path: path, Baud: baud, ReadTimeout: 100 * time.Millisecond})
	}
	return Run(ctx, devices.NewPort("printer "+path, open, log), baud, log)
}

// Run keeps the printer on port connected until ctx ends.
func Run(ctx context.Context, port *devices.Port, baud int, log *slog.Logger) *Printer {
	p := &Printer{Port: port}
	go port.Run(ctx, func(ctx context.Context, rw io.ReadWriter) error {
		d := escpos.New(rw, &escpos.Opts{Baud: baud})
		defer d.Close()
		if _, err := d.Status(ctx); err != nil {
			return err
		}
		p.mu.Lock()
		p.cur = d
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.cur = nil
			p.mu.Unlock()
		}()
		log.Info("printer connected", "port", port.Name())
		// A printer that stops answering is reopened; paper and cover
		// show in the status, which each job checks anyway.
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
			if _, err := p.Status(ctx); err != nil && ctx.Err() == nil {
				return err
			}
		}
	})
	return p
}
