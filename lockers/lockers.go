// Package lockers connects the mail room to the parcel-locker bank on a
// serial port (devices/locker, docs/locker.md), reconnecting when the port
// goes away. It is the devices.Locker the mail room is given.
package lockers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"onecard/devices"
	"onecard/devices/locker"
)

// ErrNotConnected is returned while the bank's port is closed; it wraps
// devices.ErrPortFailed (the mail room tells staff the board is away).
var ErrNotConnected = fmt.Errorf("lockers: the locker bank is not connected: %w", devices.ErrPortFailed)

// Bank is the locker bank as the mail room sees it: the driver of the
// session the serial port has open, if any.
type Bank struct {
	doors int
	mu    sync.Mutex
	cur   *locker.Bank
	broke chan struct{} // closed when the current session's port failed
}

var _ devices.Locker = (*Bank)(nil)

func (b *Bank) get() (*locker.Bank, chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur, b.broke
}

// Ready reports whether the bank's port is open.
func (b *Bank) Ready() bool { d, _ := b.get(); return d != nil }

// Doors is how many doors the bank has.
func (b *Bank) Doors() int { return b.doors }

// Status reads every door's sensor (see devices.Locker).
func (b *Bank) Status(ctx context.Context) ([]devices.DoorState, error) {
	d, broke := b.get()
	if d == nil {
		return make([]devices.DoorState, b.doors), ErrNotConnected
	}
	st, err := d.Status(ctx)
	b.check(err, broke)
	return st, err
}

// Open releases a door's lock and returns once its sensor says open.
func (b *Bank) Open(ctx context.Context, door int) error {
	d, broke := b.get()
	if d == nil {
		return ErrNotConnected
	}
	err := d.Open(ctx, door)
	b.check(err, broke)
	return err
}

// check ends the session when the port failed: it is opened again.
func (b *Bank) check(err error, broke chan struct{}) {
	if errors.Is(err, devices.ErrPortFailed) {
		b.mu.Lock()
		defer b.mu.Unlock()
		select {
		case <-broke:
		default:
			close(broke)
		}
	}
}

// Open keeps the locker bank of doors doors on path connected until ctx
// ends, at baud (19200 for KR-CU16 boards).
func Open(ctx context.Context, path string, doors, baud int, log *slog.Logger) *Bank {
	open := func() (io.ReadWriteCloser, error) {
		return devices.OpenSerial(devices.SerialConfig{Path: path, Baud: baud, ReadTimeout: 100 * time.Millisecond})
	}
	return Run(ctx, devices.NewPort("locker bank "+path, open, log), doors, baud, log)
}

// Run keeps the locker bank on port connected until ctx ends.
func Run(ctx context.Context, port *devices.Port, doors, baud int, log *slog.Logger) *Bank {
	b := &Bank{doors: doors}
	go port.Run(ctx, func(ctx context.Context, rw io.ReadWriter) error {
		o := locker.DefaultOpts
		o.Baud = baud
		d, err := locker.New(rw, doors, &o)
		if err != nil {
			return err
		}
		defer d.Close()
		broke := make(chan struct{})
		b.mu.Lock()
		b.cur, b.broke = d, broke
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			b.cur = nil
			b.mu.Unlock()
		}()
		log.Info("locker bank connected", "doors", doors)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-broke:
			return ErrNotConnected
		}
	})
	return b
}
