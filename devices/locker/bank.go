package locker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"onecard/devices"
)

// Errors the driver wraps in an *Error, besides devices.ErrDoorNotOpened
// (the door's sensor still says latched after the unlock) and
// devices.ErrPortFailed.
var (
	// ErrNoAnswer: a board gave no valid answer, after the retries: it is
	// off, unwired, at another address or speed, or the line is too noisy.
	// It wraps devices.ErrTimeout.
	ErrNoAnswer = fmt.Errorf("no valid answer from the board: %w", devices.ErrTimeout)
	// ErrNoSuchDoor: a door number outside 1 to Doors().
	ErrNoSuchDoor = errors.New("no such door")
	// ErrClosed: the Bank was closed.
	ErrClosed = errors.New("driver closed")
)

// Error is what every Bank method returns on failure: what it was doing,
// where, and the cause.
type Error struct {
	// Op is "status" or "open".
	Op string
	// Door is the door being opened, 0 for a status.
	Door int
	// Board is the board concerned, -1 when none is (a door that does not
	// exist, a closed driver).
	Board int
	// Err is the cause, often a sentinel.
	Err error
}

// Error reads "locker: open door 18 (board 1, lock 2): <cause>" or
// "locker: status of board 1: <cause>".
func (e *Error) Error() string {
	msg := "locker: " + e.Op
	switch {
	case e.Door > 0 && e.Board >= 0:
		msg += fmt.Sprintf(" door %d (board %d)", e.Door, e.Board)
	case e.Door > 0:
		msg += fmt.Sprintf(" door %d", e.Door)
	case e.Board >= 0:
		msg += fmt.Sprintf(" of board %d", e.Board)
	}
	return msg + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Opts configures a Bank. Zero fields take their value from DefaultOpts.
type Opts struct {
	// Codec is the boards' frame layout.
	Codec Codec
	// Baud is the line's speed, for reckoning how long frames take on the
	// wire.
	Baud int
	// Timeout is how long to wait for a board's answer, on top of the
	// time the request and its answer take on the wire.
	Timeout time.Duration
	// Retries is how many times a request that got no valid answer is
	// sent again; negative means never.
	Retries int
	// ConfirmDelay is the wait between the unlock and the first status
	// poll that confirms the door opened, and between later polls.
	ConfirmDelay time.Duration
	// ConfirmPolls is how many status polls may confirm it before the door
	// is taken for stuck.
	ConfirmPolls int
}

// DefaultOpts suits KR-CU16 boards at their factory speed, 19200 baud. A
// board answers within a few milliseconds; a released door springs open at
// once, so the first poll, 25 ms after the unlock, usually confirms it.
var DefaultOpts = Opts{
	Codec:        KRCU16{},
	Baud:         19200,
	Timeout:      200 * time.Millisecond,
	Retries:      2,
	ConfirmDelay: 25 * time.Millisecond,
	ConfirmPolls: 4,
}

// Bank is a bank of locker doors on one RS-485 bus: boards at addresses 0,
// 1, 2 … each driving Codec.Locks() doors. Door d (from 1) is lock
// (d-1) mod Locks on board (d-1) div Locks: with 16-lock boards, doors 1–16
// are board 0, 17–32 board 1, 33–48 board 2. Its methods are safe for
// concurrent use and run one at a time, as a half-duplex bus needs.
//
// A failed port breaks a Bank for good, as it does the other drivers: a
// read error other than io.EOF (tarm/serial's "no data yet"), a write
// error, or a port that hung up. Every later call then returns an error
// wrapping devices.ErrPortFailed: close the port, open it again and make a
// new Bank (devices.Port does the reopening).
type Bank struct {
	port  io.ReadWriter
	opts  Opts
	doors int

	closed    chan struct{}
	closeOnce sync.Once

	// Filled by the reader goroutine, consumed by the running request.
	rx *devices.RxBuffer

	// sem admits one operation at a time; it guards line, dirty and wdone.
	sem   chan struct{}
	line  lineStats  // but for the bytes rx discarded (see stats)
	dirty bool       // a request went unanswered: its answer may yet come
	wdone chan error // the write in flight, nil when none
}

var _ devices.Locker = (*Bank)(nil)

// New returns a driver for a bank of doors doors on port; nil opts means
// DefaultOpts. It starts a goroutine that reads port until the port fails
// or, after Close, its next read returns: close the port to end it.
func New(port io.ReadWriter, doors int, opts *Opts) (*Bank, error) {
	o := DefaultOpts
	if opts != nil {
		if opts.Codec != nil {
			o.Codec = opts.Codec
		}
		if opts.Baud > 0 {
			o.Baud = opts.Baud
		}
		if opts.Timeout > 0 {
			o.Timeout = opts.Timeout
		}
		if opts.Retries != 0 {
			o.Retries = max(0, opts.Retries)
		}
		if opts.ConfirmDelay > 0 {
			o.ConfirmDelay = opts.ConfirmDelay
		}
		if opts.ConfirmPolls > 0 {
			o.ConfirmPolls = opts.ConfirmPolls
		}
	}
	if most := o.Codec.Boards() * o.Codec.Locks(); doors < 1 || doors > most {
		return nil, fmt.Errorf("locker: a bank of %d doors: one bus holds 1 to %d", doors, most)
	}
	b := &Bank{
		port:   port,
		opts:   o,
		doors:  doors,
		closed: make(chan struct{}),
		rx:     devices.NewRxBuffer(maxBuffered),
		sem:    make(chan struct{}, 1),
	}
	go b.rx.Fill(port, 256, b.closed)
	return b, nil
}

// Close stops the driver: an operation in progress and every later call
// return an error wrapping ErrClosed. It does not close the port.
func (b *Bank) Close() error {
	b.closeOnce.Do(func() { close(b.closed) })
	return nil
}

// Doors is how many doors the bank has.
func (b *Bank) Doors() int { return b.doors }

// Boards is how many boards the doors take: addresses 0 to Boards()-1.
func (b *Bank) Boards() int { return (b.doors + b.opts.Codec.Locks() - 1) / b.opts.Codec.Locks() }

// Locate returns the board and the lock (both from 0) of door (from 1).
func (b *Bank) Locate(door int) (board, lock int, err error) {
	if door < 1 || door > b.doors {
		return -1, -1, fmt.Errorf("%w: door %d of %d", ErrNoSuchDoor, door, b.doors)
	}
	n := b.opts.Codec.Locks()
	return (door - 1) / n, (door - 1) % n, nil
}

// Status asks each board in turn for its locks' state: element i of the
// result is door i+1. When some boards give no valid answer, the result
// still holds the others' doors, devices.DoorUnknown for theirs, and the
// error joins one *Error wrapping ErrNoAnswer for each.
func (b *Bank) Status(ctx context.Context) ([]devices.DoorState, error) {
	if err := b.acquire(ctx); err != nil {
		return nil, &Error{Op: "status", Board: -1, Err: err}
	}
	defer b.release()
	states := make([]devices.DoorState, b.doors)
	var errs []error
	for board := range b.Boards() {
		r, err := b.query(ctx, board)
		if err != nil {
			errs = append(errs, &Error{Op: "status", Board: board, Err: err})
			if !errors.Is(err, ErrNoAnswer) {
				break // the port, the context or the driver is done: so are the other boards
			}
			continue
		}
		b.fill(states, board, r)
	}
	return states, errors.Join(errs...)
}

// fill sets board's doors in states from its reply.
func (b *Bank) fill(states []devices.DoorState, board int, r Reply) {
	n := b.opts.Codec.Locks()
	for lock := range n {
		door := board*n + lock + 1
		if door > b.doors {
			return
		}
		states[door-1] = devices.DoorOpen
		if r.IsLocked(lock) {
			states[door-1] = devices.DoorClosed
		}
	}
}

// Open tells door's board to release its lock, then polls the board's
// status, ConfirmDelay after its answer and up to ConfirmPolls times, until
// the door's sensor says open. The unlock's own answer is not taken for
// the door's state: a board may answer before the door has moved.
//
// An unlock the board does not answer is sent again (up to Retries times)
// while the door stays latched; one it answered is not: a door that does
// not open then is stuck (devices.ErrDoorNotOpened). A door already open
// is confirmed at the first poll.
func (b *Bank) Open(ctx context.Context, door int) error {
	board, lock, err := b.Locate(door)
	if err != nil {
		return &Error{Op: "open", Door: door, Board: -1, Err: err}
	}
	fail := func(err error) error { return &Error{Op: "open", Door: door, Board: board, Err: err} }
	if err := b.acquire(ctx); err != nil {
		return fail(err)
	}
	defer b.release()
	req := b.opts.Codec.UnlockRequest(board, lock)
	for try := 1; ; try++ {
		_, err := b.ask(ctx, board, req)
		var silent *noReply
		heard := err == nil
		if !heard && !errors.As(err, &silent) {
			return fail(err)
		}
		open, err := b.confirm(ctx, board, lock)
		switch {
		case err != nil:
			return fail(err)
		case open:
			return nil
		case heard:
			return fail(fmt.Errorf("%w: its sensor still says latched %d polls after the board took the unlock",
				devices.ErrDoorNotOpened, b.opts.ConfirmPolls))
		case try > b.opts.Retries:
			return fail(fmt.Errorf("%w: the board answered status but never the unlock, sent %d times (%s)",
				devices.ErrDoorNotOpened, try, silent.line))
		}
	}
}

// confirm polls board until lock's door is open, ConfirmPolls times.
func (b *Bank) confirm(ctx context.Context, board, lock int) (open bool, err error) {
	for range b.opts.ConfirmPolls {
		if err := b.sleep(ctx, b.opts.ConfirmDelay); err != nil {
			return false, err
		}
		r, err := b.query(ctx, board)
		if err != nil {
			return false, err
		}
		if !r.IsLocked(lock) {
			return true, nil
		}
	}
	return false, nil
}

// query asks board for its status, Retries more times if it gets no valid
// answer.
func (b *Bank) query(ctx context.Context, board int) (Reply, error) {
	req := b.opts.Codec.StatusRequest(board)
	var silent *noReply
	for range b.opts.Retries + 1 {
		r, err := b.ask(ctx, board, req)
		if err == nil {
			return r, nil
		}
		if !errors.As(err, &silent) {
			return Reply{}, err
		}
	}
	return Reply{}, fmt.Errorf("%d tries, %s: %w", b.opts.Retries+1, silent.line, ErrNoAnswer)
}

func (b *Bank) acquire(ctx context.Context) error {
	if err := b.usable(); err != nil {
		return err
	}
	select {
	case b.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closed:
		return ErrClosed
	}
}

func (b *Bank) release() { <-b.sem }

// usable reports why the Bank can take no operation.
func (b *Bank) usable() error {
	select {
	case <-b.closed:
		return ErrClosed
	default:
	}
	return b.rx.Err()
}

// sleep waits d, unless ctx ends or the driver closes first.
func (b *Bank) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closed:
		return ErrClosed
	}
}

// wire is how long n bytes take on the line (8N1: 10 bits a byte).
func (b *Bank) wire(n int) time.Duration {
	return time.Duration(n) * 10 * time.Second / time.Duration(b.opts.Baud)
}
