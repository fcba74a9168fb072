package payterm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"onecard/devices"
)

// Opts configures a Terminal. Zero fields take their value from
// DefaultOpts.
type Opts struct {
	// Baud is the line's speed, for reckoning how long frames take.
	Baud int
	// AckTimeout is how long to wait for the ACK of a request, on top of
	// the time the request and the ACK take on the wire.
	AckTimeout time.Duration
	// Retries is how often to resend a request that got a NAK or no ACK.
	// Negative means never.
	Retries int
	// ReplyTimeout bounds the wait for the answer to QUERY and STATUS,
	// after the ACK.
	ReplyTimeout time.Duration
	// CancelTimeout bounds the wait for the answer to CANCEL, which may
	// void a sale online.
	CancelTimeout time.Duration
	// SaleTimeout is how long Sale waits for the outcome, from sending the
	// SALE: the customer has to present the card, maybe enter a PIN, and
	// the acquirer has to answer. Then Sale queries.
	SaleTimeout time.Duration
	// QueryTries is how many queries Sale makes, QueryInterval apart, when
	// the outcome did not come or came garbled. It must outlast a terminal
	// rebooting after a power cut.
	QueryTries    int
	QueryInterval time.Duration
}

// DefaultOpts suits a terminal on a USB serial adapter at 115200 baud
// (docs/payterm.md, "Timeouts").
var DefaultOpts = Opts{
	Baud:          115200,
	AckTimeout:    500 * time.Millisecond,
	Retries:       2,
	ReplyTimeout:  2 * time.Second,
	CancelTimeout: 30 * time.Second,
	SaleTimeout:   90 * time.Second,
	QueryTries:    10,
	QueryInterval: 3 * time.Second,
}

// Terminal is a payment terminal on a serial port. Its methods are safe
// for concurrent use: a Cancel or a Query may go while a Sale waits for
// the customer. Requests go out one at a time; answers are matched to
// them by sequence number, and outcomes also by reference.
//
// A failed port breaks a Terminal for good: a read error other than
// io.EOF (tarm/serial's "no data yet"), a write error, or a port that hung
// up. Done is then closed and every call returns an error wrapping
// devices.ErrPortFailed: close the port, open it again and make a new
// Terminal (devices.Port does the reopening).
type Terminal struct {
	port io.ReadWriter
	opts Opts

	closed    chan struct{} // Close was called
	closeOnce sync.Once
	done      chan struct{} // closed, or the port failed
	doneOnce  sync.Once

	writes chan outFrame // to writeLoop
	link   chan struct{} // admits one request at a time until its ACK

	mu       sync.Mutex
	err      error // why done
	seq      byte
	waiters  map[*waiter]struct{}
	inflight *waiter // the request waiting for its ACK
	line     lineStats
}

// New returns a driver for the terminal on port; nil opts means
// DefaultOpts. It starts a goroutine that reads port until the port fails
// or, after Close, its next read returns: close the port to end it.
func New(port io.ReadWriter, opts *Opts) *Terminal {
	o := DefaultOpts
	if opts != nil {
		o = *opts
		def := DefaultOpts
		if o.Baud <= 0 {
			o.Baud = def.Baud
		}
		if o.AckTimeout <= 0 {
			o.AckTimeout = def.AckTimeout
		}
		switch {
		case o.Retries == 0:
			o.Retries = def.Retries
		case o.Retries < 0:
			o.Retries = 0
		}
		if o.ReplyTimeout <= 0 {
			o.ReplyTimeout = def.ReplyTimeout
		}
		if o.CancelTimeout <= 0 {
			o.CancelTimeout = def.CancelTimeout
		}
		if o.SaleTimeout <= 0 {
			o.SaleTimeout = def.SaleTimeout
		}
		if o.QueryTries <= 0 {
			o.QueryTries = def.QueryTries
		}
		if o.QueryInterval <= 0 {
			o.QueryInterval = def.QueryInterval
		}
	}
	t := &Terminal{
		port:    port,
		opts:    o,
		closed:  make(chan struct{}),
		done:    make(chan struct{}),
		writes:  make(chan outFrame, 16),
		link:    make(chan struct{}, 1),
		waiters: map[*waiter]struct{}{},
		// A random first SEQ: a host restarting must not repeat the frame
		// the terminal saw last, which it would take for a resend.
		seq: byte(rand.IntN(255)),
	}
	go t.readLoop()
	go t.writeLoop()
	return t
}

// Close stops the driver: calls in progress and every later call return
// an error wrapping ErrClosed. It does not close the port.
func (t *Terminal) Close() error {
	t.closeOnce.Do(func() {
		close(t.closed)
		t.stop(ErrClosed)
	})
	return nil
}

// Done is closed when the Terminal stops working: Close, or a port
// failure. Err then says why. A devices.Port session waits on it.
func (t *Terminal) Done() <-chan struct{} { return t.done }

// Err is nil while the Terminal works, then ErrClosed or an error wrapping
// devices.ErrPortFailed.
func (t *Terminal) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

func (t *Terminal) fail(err error) {
	t.stop(fmt.Errorf("%w: %w", devices.ErrPortFailed, err))
}

func (t *Terminal) stop(err error) {
	t.doneOnce.Do(func() {
		t.mu.Lock()
		t.err = err
		t.mu.Unlock()
		close(t.done)
	})
}

// Sale asks the terminal to take amountFen fen (CNY) from a card, under
// the host's reference ref (1–32 visible ASCII characters, never reused
// for another payment), and waits for the outcome up to Opts.SaleTimeout.
//
// Approved and Declined (with its reason) come with a nil error. A
// reference already used returns that sale's outcome: the terminal never
// charges twice for one reference, and a declined one stays declined (try
// again under a new reference).
//
// When the outcome does not come in time, or comes garbled, Sale queries
// the reference, Opts.QueryTries times, and returns what the terminal
// says: an outcome; InProgress with an error wrapping ErrInProgress (the
// customer is still at it: Query later, or Cancel); NotFound with an error
// wrapping ErrNotTaken (the SALE never arrived: nothing charged). If even
// the queries go unanswered, or ctx ends first, it returns State Unknown
// and an error wrapping ErrUnknownOutcome: the caller must resolve the
// reference with Query before anything else. Sale never guesses.
//
// Other errors: NotFound with ErrBusy (another sale in progress), Unknown
// with ErrConflict (the reference was used for another amount),
// ErrRejected (the terminal refused the request; Error.Code).
func (t *Terminal) Sale(ctx context.Context, ref string, amountFen int64) (Result, error) {
	fail := func(r Result, err error) (Result, error) {
		return r, &Error{Op: "sale", Ref: ref, Err: err}
	}
	if err := CheckRef(ref); err != nil {
		return fail(Result{Ref: ref}, err)
	}
	if err := CheckAmount(amountFen); err != nil {
		return fail(Result{Ref: ref}, err)
	}
	w := t.register(ref)
	defer t.unregister(w)
	frame, err := Marshal(w.seq, SaleMsg{Ref: ref, Amount: amountFen})
	if err != nil {
		return fail(Result{Ref: ref}, err)
	}
	deadline := time.Now().Add(t.opts.SaleTimeout)
	mark := t.stats()
	why := t.send(ctx, w, frame)
	for why == nil {
		var m Message
		m, why = t.await(ctx, w, deadline, mark)
		if why != nil {
			break
		}
		switch m := m.(type) {
		case ApprovedMsg, DeclinedMsg, VoidedMsg:
			r, _ := resultOf(m)
			return t.outcome(r, amountFen)
		case InProgressMsg:
			// The reference is already in progress (sent twice, or by this
			// host before a restart): its outcome comes by reference.
			if m.Ref != ref {
				why = fmt.Errorf("%w: IN_PROGRESS for %q", ErrBadResponse, m.Ref)
			}
		case BusyMsg:
			if m.Ref != ref {
				why = fmt.Errorf("%w: BUSY for %q", ErrBadResponse, m.Ref)
				break
			}
			return fail(Result{Ref: ref, State: NotFound}, ErrBusy)
		case ErrorMsg:
			e := &Error{Op: "sale", Ref: ref, Code: m.Code, Err: fmt.Errorf("%w: %s", ErrRejected, m.Text)}
			if m.Code == CodeRefConflict {
				// Under ref the journal holds another amount's sale.
				e.Err = fmt.Errorf("%w (%w): %s", ErrConflict, ErrRejected, m.Text)
				return Result{Ref: ref}, e
			}
			// Refused before anything was recorded.
			return Result{Ref: ref, State: NotFound}, e
		case nil:
			why = fmt.Errorf("%w: %w", ErrBadResponse, errors.New("no message"))
		default:
			why = fmt.Errorf("%w: %v to a SALE", ErrBadResponse, m.Type())
		}
	}
	if errors.Is(why, ErrMalformed) {
		why = fmt.Errorf("%w: %w", ErrBadResponse, why)
	}
	if ctx.Err() != nil || errors.Is(why, ErrClosed) || errors.Is(why, devices.ErrPortFailed) {
		return fail(Result{Ref: ref}, fmt.Errorf("%w: %w", ErrUnknownOutcome, why))
	}
	return t.recover(ctx, ref, amountFen, why)
}

// recover learns a sale's outcome by querying its reference.
func (t *Terminal) recover(ctx context.Context, ref string, amountFen int64, why error) (Result, error) {
	fail := func(r Result, err error) (Result, error) {
		return r, &Error{Op: "sale", Ref: ref, Err: err}
	}
	var last error
	for i := range t.opts.QueryTries {
		if i > 0 {
			tm := time.NewTimer(t.opts.QueryInterval)
			select {
			case <-tm.C:
			case <-ctx.Done():
				tm.Stop()
			case <-t.done:
				tm.Stop()
			}
		}
		if ctx.Err() != nil || t.Err() != nil {
			break
		}
		r, err := t.Query(ctx, ref)
		if err != nil {
			last = err
			if e, ok := err.(*Error); ok {
				last = e.Err
			}
			continue
		}
		switch r.State {
		case InProgress:
			return fail(r, fmt.Errorf("%w (%v)", ErrInProgress, why))
		case NotFound:
			return fail(r, fmt.Errorf("%w (%v)", ErrNotTaken, why))
		}
		return t.outcome(r, amountFen)
	}
	if last == nil {
		last = ctx.Err()
	}
	if last == nil {
		last = t.Err()
	}
	return fail(Result{Ref: ref}, fmt.Errorf("%w: the sale got %v; querying it: %w", ErrUnknownOutcome, why, last))
}

// outcome checks that an outcome is for the amount asked.
func (t *Terminal) outcome(r Result, amountFen int64) (Result, error) {
	if r.Amount != amountFen {
		return r, &Error{Op: "sale", Ref: r.Ref, Err: fmt.Errorf("%w: the terminal has %d fen under it, not %d", ErrConflict, r.Amount, amountFen)}
	}
	return r, nil
}

// Query asks the terminal for the sale with reference ref: its outcome
// (Approved, Declined, Voided), InProgress, or NotFound (nothing was ever
// charged under ref, or it is older than the terminal's journal). When the
// terminal does not answer it returns State Unknown and the error.
func (t *Terminal) Query(ctx context.Context, ref string) (Result, error) {
	return t.aboutSale(ctx, "query", QueryMsg{Ref: ref}, ref, t.opts.ReplyTimeout)
}

// Cancel stops the sale with reference ref while the terminal still waits
// for the card (Declined, reason ReasonHostCancel), or voids it if it was
// approved (Voided: the money goes back). A sale past the card (PIN entry,
// authorising) cannot be stopped: Cancel returns InProgress; Query later
// and Cancel again if it was approved. A declined or voided sale stays as
// it is; an unknown reference is NotFound. A void the acquirer refuses, or
// one after the batch was settled, is an error wrapping ErrRejected with
// Code CodeNotCancellable.
func (t *Terminal) Cancel(ctx context.Context, ref string) (Result, error) {
	return t.aboutSale(ctx, "cancel", CancelMsg{Ref: ref}, ref, t.opts.CancelTimeout)
}

// aboutSale sends a QUERY or CANCEL and turns the answer into a Result.
func (t *Terminal) aboutSale(ctx context.Context, op string, m Message, ref string, wait time.Duration) (Result, error) {
	unknown := Result{Ref: ref}
	fail := func(code Code, err error) (Result, error) {
		return unknown, &Error{Op: op, Ref: ref, Code: code, Err: err}
	}
	if err := CheckRef(ref); err != nil {
		return fail(0, err)
	}
	a, err := t.request(ctx, m, ref, wait)
	switch {
	case errors.Is(err, ErrMalformed):
		return fail(0, fmt.Errorf("%w: %w", ErrBadResponse, err))
	case err != nil:
		return fail(0, err)
	}
	if e, ok := a.(ErrorMsg); ok {
		return fail(e.Code, fmt.Errorf("%w: %s", ErrRejected, e.Text))
	}
	r, ok := resultOf(a)
	if !ok {
		return fail(0, fmt.Errorf("%w: %v to a %v", ErrBadResponse, a.Type(), m.Type()))
	}
	if r.Ref != ref {
		return fail(0, fmt.Errorf("%w: answer about %q", ErrBadResponse, r.Ref))
	}
	return r, nil
}

// Status is what a terminal reports it is doing.
type Status struct {
	State TermState
	// Ref is the sale in progress, "" if none.
	Ref   string
	Batch uint32
	// JournalUsed of JournalSize entries are in the journal.
	JournalUsed, JournalSize int
	// Protocol is the protocol version the terminal speaks.
	Protocol int
	// Version is its firmware version.
	Version string
}

// Status asks the terminal what it is doing: a cheap check that it
// answers.
func (t *Terminal) Status(ctx context.Context) (Status, error) {
	fail := func(err error) (Status, error) { return Status{}, &Error{Op: "status", Err: err} }
	a, err := t.request(ctx, StatusMsg{}, "", t.opts.ReplyTimeout)
	switch {
	case errors.Is(err, ErrMalformed):
		return fail(fmt.Errorf("%w: %w", ErrBadResponse, err))
	case err != nil:
		return fail(err)
	}
	s, ok := a.(StatusReplyMsg)
	if !ok {
		return fail(fmt.Errorf("%w: %v to a STATUS", ErrBadResponse, a.Type()))
	}
	return Status{
		State: s.State, Ref: s.Ref, Batch: s.Batch,
		JournalUsed: int(s.JournalUsed), JournalSize: int(s.JournalSize),
		Protocol: int(s.Protocol), Version: s.Version,
	}, nil
}
