package escpos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"onecard/devices"
)

// ErrClosed: the Printer was closed.
var ErrClosed = errors.New("driver closed")

// Error is what every Printer method returns on failure: what it was doing
// and the cause, often a sentinel (ErrCoverOpen, ErrPaperOut, ErrOffline,
// ErrNotStatus, devices.ErrTimeout, devices.ErrPortFailed, ErrClosed).
type Error struct {
	// Op is what the driver was doing: "status query 2", "print".
	Op  string
	Err error
}

// Error reads "escpos: <op>: <cause>".
func (e *Error) Error() string { return "escpos: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Opts configures a Printer. Zero fields take their value from DefaultOpts.
type Opts struct {
	// Timeout is how long to wait for the answer to a status query, on
	// top of the time the query, its answer and any job still on its way
	// take on the wire; it also bounds a write the port does not take.
	Timeout time.Duration
	// Baud is the line's speed, for reckoning that wire time.
	Baud int
}

// DefaultOpts suits a receipt printer on a serial line at 9600 baud, a
// common factory setting (docs/printer.md). Printers answer a status query
// within milliseconds.
var DefaultOpts = Opts{
	Timeout: 500 * time.Millisecond,
	Baud:    9600,
}

// Printer is an ESC/POS receipt printer on a serial port (or a pty, or one
// end of a net.Pipe). Its methods are safe for concurrent use and run one
// at a time.
//
// A failed port breaks a Printer for good, as it does a pn532.Dev: a read
// error other than io.EOF (tarm/serial's "no data yet"), a write error, or
// a port that hung up. Every later call then returns an error wrapping
// devices.ErrPortFailed: close the port, open it again and make a new
// Printer (devices.Port does the reopening).
type Printer struct {
	port io.ReadWriter
	opts Opts

	closed    chan struct{}
	closeOnce sync.Once

	// Filled by the reader goroutine, consumed by the running query.
	rx *devices.RxBuffer

	// sem admits one operation at a time; it guards wdone, lineFree and
	// dirty.
	sem      chan struct{}
	wdone    chan error // the write in flight, nil when none
	lineFree time.Time  // when the bytes written so far are all on the wire
	dirty    bool       // a query failed: its answer may yet come
}

// New returns a driver for the printer on port; nil opts means
// DefaultOpts. It starts a goroutine that reads port until the port fails
// or, after Close, its next read returns: close the port to end it.
func New(port io.ReadWriter, opts *Opts) *Printer {
	o := DefaultOpts
	if opts != nil {
		if opts.Timeout > 0 {
			o.Timeout = opts.Timeout
		}
		if opts.Baud > 0 {
			o.Baud = opts.Baud
		}
	}
	p := &Printer{
		port:   port,
		opts:   o,
		closed: make(chan struct{}),
		rx:     devices.NewRxBuffer(maxBuffered),
		sem:    make(chan struct{}, 1),
	}
	go p.rx.Fill(port, 256, p.closed)
	return p
}

// Close stops the driver: an operation in progress and every later call
// return an error wrapping ErrClosed. It does not close the port.
func (p *Printer) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	return nil
}

// Status asks the printer for its state: DLE EOT 1 (online), 2 (offline
// cause) and 4 (paper sensors), and DLE EOT 3 (error cause) when the
// offline cause reports an error.
func (p *Printer) Status(ctx context.Context) (Status, error) {
	if err := p.acquire(ctx, "status"); err != nil {
		return Status{}, err
	}
	defer p.release()
	return p.status(ctx)
}

// Print asks for the printer's status and, if it is ready, sends job (see
// Builder). A printer that is not ready gets nothing: the error wraps each
// of ErrCoverOpen, ErrPaperOut and ErrOffline that applies. A printer that
// does not answer gets nothing either (devices.ErrTimeout), nor does one
// whose answer is not a status byte (ErrNotStatus).
//
// Print returns once the port has taken the job; the printer prints it as
// it arrives. The job should not hold DLE EOT n (10 04 n) anywhere (the
// Builder never writes it): a printer answers it wherever it comes. Whether it printed to the end shows in the next status: a
// roll that runs out mid-job stops the printer, which prints the rest when
// new paper is loaded.
func (p *Printer) Print(ctx context.Context, job []byte) error {
	if err := p.acquire(ctx, "print"); err != nil {
		return err
	}
	defer p.release()
	st, err := p.status(ctx)
	if err != nil {
		return err
	}
	if err := st.Ready(); err != nil {
		return &Error{Op: "print", Err: err}
	}
	if err := p.write(ctx, job); err != nil {
		return &Error{Op: "print", Err: err}
	}
	return nil
}

func (p *Printer) acquire(ctx context.Context, op string) error {
	if err := p.usable(); err != nil {
		return &Error{Op: op, Err: err}
	}
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &Error{Op: op, Err: ctx.Err()}
	case <-p.closed:
		return &Error{Op: op, Err: ErrClosed}
	}
}

func (p *Printer) release() { <-p.sem }

// usable reports why the Printer can take no operation.
func (p *Printer) usable() error {
	select {
	case <-p.closed:
		return ErrClosed
	default:
	}
	return p.rx.Err()
}

func (p *Printer) status(ctx context.Context) (Status, error) {
	var s Status
	for _, n := range []byte{QueryPrinter, QueryOffline, QueryPaper} {
		t, err := p.query(ctx, n)
		if err != nil {
			return Status{}, err
		}
		s = s.merge(t)
	}
	if s.Error {
		t, err := p.query(ctx, QueryError)
		if err != nil {
			return Status{}, err
		}
		s = s.merge(t)
	}
	return s, nil
}

// Flow control bytes a printer set to XON/XOFF sends when its buffer fills
// and empties: not answers.
const (
	xon  = 0x11
	xoff = 0x13
)

// query sends DLE EOT n and reads its answer.
func (p *Printer) query(ctx context.Context, n byte) (Status, error) {
	op := fmt.Sprintf("status query %d", n)
	fail := func(err error) (Status, error) {
		p.dirty = true
		return Status{}, &Error{Op: op, Err: err}
	}
	if err := p.settle(ctx); err != nil {
		return fail(err)
	}
	// Whatever came before the query is stale: noise, a late answer.
	p.rx.Drain()
	if err := p.write(ctx, StatusQuery(n)); err != nil {
		return fail(err)
	}
	limit := p.opts.Timeout + max(0, time.Until(p.lineFree)) + p.wire(1)
	deadline := time.Now().Add(limit)
	for {
		b, err := p.readByte(ctx, deadline)
		switch {
		case errors.Is(err, errWait):
			return fail(fmt.Errorf("no answer within %v: %w", limit.Round(time.Millisecond), devices.ErrTimeout))
		case err != nil:
			return fail(err)
		case b == xon || b == xoff:
			continue
		}
		s, err := ParseStatus(n, b)
		if err != nil {
			return fail(fmt.Errorf("answer 0x%02X: %w", b, ErrNotStatus))
		}
		return s, nil
	}
}

// settle waits, after a failed query, until the line has been quiet for a
// moment (at most Timeout), so that the failed query's answer, coming
// late or after garbage, cannot pass for the next one's.
func (p *Printer) settle(ctx context.Context) error {
	if !p.dirty {
		return nil
	}
	quiet := settleQuiet + p.wire(8)
	end := time.Now().Add(p.opts.Timeout)
	for {
		p.rx.Drain()
		deadline := time.Now().Add(quiet)
		if deadline.After(end) {
			deadline = end
		}
		_, err := p.readByte(ctx, deadline)
		if errors.Is(err, errWait) || (err == nil && time.Now().After(end)) {
			break
		}
		if err != nil {
			return err
		}
	}
	p.rx.Drain()
	p.dirty = false
	return nil
}

// settleQuiet is how long the line must stay silent after a failed query:
// a printer answers within a few milliseconds.
const settleQuiet = 20 * time.Millisecond

// wire is how long n bytes take on the line (8N1: 10 bits a byte).
func (p *Printer) wire(n int) time.Duration {
	return time.Duration(n) * 10 * time.Second / time.Duration(p.opts.Baud)
}

// write sends b. Port writes cannot be interrupted, so one runs in its own
// goroutine and the caller waits for it as long as ctx allows and the line
// could need; a write left behind is waited for by the next.
func (p *Printer) write(ctx context.Context, b []byte) error {
	if err := p.waitWrite(ctx, p.opts.Timeout); err != nil {
		return err
	}
	now := time.Now()
	start := now
	if p.lineFree.After(now) {
		start = p.lineFree
	}
	p.lineFree = start.Add(p.wire(len(b)))
	limit := p.opts.Timeout + p.lineFree.Sub(now)
	done := make(chan error, 1)
	go func() {
		_, err := p.port.Write(b)
		done <- err
	}()
	p.wdone = done
	return p.waitWrite(ctx, limit)
}

func (p *Printer) waitWrite(ctx context.Context, limit time.Duration) error {
	if p.wdone == nil {
		return nil
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case err := <-p.wdone:
		p.wdone = nil
		if err != nil {
			p.rx.Fail(err)
			return p.rx.Err()
		}
		return nil
	case <-t.C:
		return fmt.Errorf("write stalled for %v (flow control holding it?): %w", limit.Round(time.Millisecond), devices.ErrTimeout)
	case <-ctx.Done():
		return ctx.Err()
	case <-p.closed:
		return ErrClosed
	}
}
