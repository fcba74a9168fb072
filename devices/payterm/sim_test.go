//go:build unix

package payterm_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"onecard/devices"
	"onecard/devices/payterm"
	firmwaresim "onecard/firmware-sim"
	paytermsim "onecard/firmware-sim/payterm"
)

// The driver against the simulator, over a real pty opened with
// tarm/serial: each behaviour of the terminal, end to end. Timeouts are
// short so that failing paths are quick; no test asserts how long
// anything took.

const baud = 115200

// bound limits every wait of a test, so a broken driver fails it instead
// of hanging it.
const bound = 10 * time.Second

// testOpts keeps failing paths quick.
var testOpts = payterm.Opts{
	Baud:          baud,
	AckTimeout:    150 * time.Millisecond,
	Retries:       2,
	ReplyTimeout:  time.Second,
	CancelTimeout: time.Second,
	SaleTimeout:   3 * time.Second,
	QueryTries:    3,
	QueryInterval: 50 * time.Millisecond,
}

// rig starts a simulator on a pty and a driver on the pty's slave.
func rig(t *testing.T, so paytermsim.Options, do payterm.Opts) (*payterm.Terminal, *paytermsim.Sim) {
	t.Helper()
	link := filepath.Join(t.TempDir(), "payterm")
	p, err := firmwaresim.OpenPTY(link)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	so.Baud = baud
	if so.Delay == 0 {
		so.Delay = 20 * time.Millisecond
	}
	sim, err := paytermsim.New(so)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- sim.Serve(ctx, p) }()
	port, err := devices.OpenSerial(devices.SerialConfig{Path: link, Baud: baud})
	if err != nil {
		t.Fatal(err)
	}
	term := payterm.New(port, &do)
	t.Cleanup(func() {
		term.Close()
		port.Close()
		cancel()
		select {
		case err := <-served:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(bound):
			t.Error("Serve did not stop")
		}
		p.Close()
	})
	return term, sim
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*bound)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds, failing the test after bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantErr checks that err is a *payterm.Error for op and ref wrapping
// every one of causes.
func wantErr(t *testing.T, err error, op, ref string, causes ...error) {
	t.Helper()
	var e *payterm.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want a *payterm.Error", err, err)
	}
	if e.Op != op || e.Ref != ref {
		t.Errorf("Error{Op: %q, Ref: %q}, want %q %q", e.Op, e.Ref, op, ref)
	}
	for _, c := range causes {
		if !errors.Is(err, c) {
			t.Errorf("err = %v, want it to wrap %v", err, c)
		}
	}
}

func TestSaleApproved(t *testing.T) {
	term, sim := rig(t, paytermsim.Options{}, testOpts)
	ctx := ctxT(t)
	r, err := term.Sale(ctx, "PAY-00042", 12000)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != payterm.Approved || r.Ref != "PAY-00042" || r.Amount != 12000 || len(r.Auth) != 6 ||
		len(r.Last4) != 4 || r.Trace == 0 || r.Batch == 0 || r.Scheme != payterm.SchemeUnionPay || r.Time.IsZero() {
		t.Fatalf("Sale = %+v", r)
	}
	e, ok := sim.Entry("PAY-00042")
	if !ok || e.State != paytermsim.Approved || e.Auth != r.Auth || e.Trace != r.Trace || e.Last4 != r.Last4 {
		t.Fatalf("journal %+v, driver %+v", e, r)
	}
	q, err := term.Query(ctx, "PAY-00042")
	if err != nil || q != r {
		t.Fatalf("Query = %+v, %v\nwant %+v", q, err, r)
	}
	st, err := term.Status(ctx)
	if err != nil || st.State != payterm.Idle || st.Ref != "" || st.JournalUsed != 1 ||
		st.JournalSize != paytermsim.DefaultJournalSize || st.Protocol != payterm.ProtocolVersion || st.Version == "" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if n := sim.Status().Charges; n != 1 {
		t.Fatalf("charges = %d", n)
	}
}

func TestSaleDeclined(t *testing.T) {
	term, sim := rig(t, paytermsim.Options{}, testOpts)
	ctx := ctxT(t)
	if err := sim.Decline("51", ""); err != nil {
		t.Fatal(err)
	}
	r, err := term.Sale(ctx, "D-1", 900)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != payterm.Declined || r.Reason != payterm.ReasonInsufficient || r.ReasonText != "insufficient funds" || r.Amount != 900 || r.Auth != "" {
		t.Fatalf("Sale = %+v", r)
	}
	// The reference keeps its outcome: selling under it again, even once
	// the card would pass, returns the decline and charges nothing.
	sim.Approve()
	again, err := term.Sale(ctx, "D-1", 900)
	if err != nil || again != r {
		t.Fatalf("Sale again = %+v, %v\nwant %+v", again, err, r)
	}
	if err := sim.Decline("5", ""); err == nil {
		t.Error("Decline accepted a 1-character reason")
	}
	if n := sim.Status().Charges; n != 0 {
		t.Fatalf("charges = %d", n)
	}
}

// The customer never taps: Sale ends InProgress, learned by querying;
// later the customer taps and Query finds the approval.
func TestSaleTimeoutThenQuery(t *testing.T) {
	opts := testOpts
	opts.SaleTimeout = 300 * time.Millisecond
	term, sim := rig(t, paytermsim.Options{}, opts)
	ctx := ctxT(t)
	sim.Timeout()
	r, err := term.Sale(ctx, "T-1", 500)
	wantErr(t, err, "sale", "T-1", payterm.ErrInProgress)
	if r.State != payterm.InProgress || r.Phase != payterm.PhaseWaitCard || r.Amount != 500 {
		t.Fatalf("Sale = %+v", r)
	}
	t.Log(err)

	if q, err := term.Query(ctx, "T-1"); err != nil || q.State != payterm.InProgress {
		t.Fatalf("Query = %+v, %v", q, err)
	}
	if q, err := term.Query(ctx, "NEVER-SOLD"); err != nil || q.State != payterm.NotFound || q.Ref != "NEVER-SOLD" {
		t.Fatalf("Query of an unknown reference = %+v, %v", q, err)
	}
	if st, err := term.Status(ctx); err != nil || st.State != payterm.Selling || st.Ref != "T-1" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	// One sale at a time.
	b, err := term.Sale(ctx, "T-2", 100)
	wantErr(t, err, "sale", "T-2", payterm.ErrBusy)
	if b.State != payterm.NotFound {
		t.Fatalf("busy sale = %+v", b)
	}

	sim.Approve() // the customer taps at last
	var q payterm.Result
	eventually(t, "query finds the approval", func() bool {
		q, err = term.Query(ctx, "T-1")
		return err == nil && q.State != payterm.InProgress
	})
	if q.State != payterm.Approved || q.Amount != 500 || len(q.Auth) != 6 {
		t.Fatalf("Query = %+v", q)
	}
}

// Cancel stops a sale waiting for the card (the Sale itself ends
// Declined C1) and voids an approved one.
func TestCancel(t *testing.T) {
	term, sim := rig(t, paytermsim.Options{}, testOpts)
	ctx := ctxT(t)
	sim.Timeout()
	type sale struct {
		r   payterm.Result
		err error
	}
	done := make(chan sale, 1)
	go func() {
		r, err := term.Sale(ctx, "C-1", 700)
		done <- sale{r, err}
	}()
	eventually(t, "sale in progress", func() bool { return sim.Status().Ref == "C-1" })
	c, err := term.Cancel(ctx, "C-1")
	if err != nil || c.State != payterm.Declined || c.Reason != payterm.ReasonHostCancel {
		t.Fatalf("Cancel = %+v, %v", c, err)
	}
	s := <-done
	if s.err != nil || s.r.State != payterm.Declined || s.r.Reason != payterm.ReasonHostCancel {
		t.Fatalf("the cancelled Sale = %+v, %v", s.r, s.err)
	}

	sim.Approve()
	a, err := term.Sale(ctx, "C-2", 1500)
	if err != nil || a.State != payterm.Approved {
		t.Fatalf("Sale = %+v, %v", a, err)
	}
	v, err := term.Cancel(ctx, "C-2")
	if err != nil || v.State != payterm.Voided || v.Auth != a.Auth || v.Trace != a.Trace || v.VoidTrace == 0 || v.VoidTrace == a.Trace || v.VoidTime.IsZero() {
		t.Fatalf("void = %+v, %v (sale %+v)", v, err, a)
	}
	for _, op := range []func(context.Context, string) (payterm.Result, error){term.Cancel, term.Query} {
		if again, err := op(ctx, "C-2"); err != nil || again != v {
			t.Fatalf("after the void: %+v, %v\nwant %+v", again, err, v)
		}
	}
	if nf, err := term.Cancel(ctx, "C-404"); err != nil || nf.State != payterm.NotFound {
		t.Fatalf("Cancel of an unknown reference = %+v, %v", nf, err)
	}
	if _, err := term.Cancel(ctx, "bad ref"); !errors.Is(err, payterm.ErrBadRef) {
		t.Fatalf("Cancel with a space in the reference: %v", err)
	}
}

// The SALE never reaches the terminal: the queries find nothing, so
// nothing was charged and selling again is safe.
func TestSaleLost(t *testing.T) {
	term, sim := rig(t, paytermsim.Options{}, testOpts)
	ctx := ctxT(t)
	sim.DropRequests(testOpts.Retries + 1)
	r, err := term.Sale(ctx, "L-1", 300)
	wantErr(t, err, "sale", "L-1", payterm.ErrNotTaken)
	if r.State != payterm.NotFound {
		t.Fatalf("Sale = %+v", r)
	}
	t.Log(err)
	if _, ok := sim.Entry("L-1"); ok {
		t.Fatal("the terminal recorded a dropped sale")
	}
	if r, err := term.Sale(ctx, "L-1", 300); err != nil || r.State != payterm.Approved {
		t.Fatalf("Sale again = %+v, %v", r, err)
	}
}

// The terminal approves, records it and loses power before telling: the
// driver's queries outlast the reboot and find the approval.
func TestPowerLossRecovered(t *testing.T) {
	opts := testOpts
	opts.SaleTimeout = 300 * time.Millisecond
	opts.AckTimeout = 100 * time.Millisecond
	opts.Retries = 1
	opts.QueryTries = 40 // ≥ 40 × 250 ms: far beyond the reboot
	opts.QueryInterval = 50 * time.Millisecond
	term, sim := rig(t, paytermsim.Options{}, opts)
	ctx := ctxT(t)
	sim.PowerLoss(time.Second)
	r, err := term.Sale(ctx, "PL-1", 2500)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := sim.Entry("PL-1")
	if r.State != payterm.Approved || r.Auth != e.Auth || r.Trace != e.Trace || r.Amount != 2500 {
		t.Fatalf("Sale = %+v, journal %+v", r, e)
	}
	if st := sim.Status(); st.Charges != 1 || st.Mode != paytermsim.Approve {
		t.Fatalf("simulator %+v", st)
	}
}

// The terminal stays silent longer than the driver queries: Sale says it
// does not know, never that it failed; a later Query finds the approval.
func TestPowerLossUnknown(t *testing.T) {
	opts := testOpts
	opts.SaleTimeout = 300 * time.Millisecond
	opts.AckTimeout = 100 * time.Millisecond
	opts.Retries = 1
	opts.QueryTries = 2
	opts.QueryInterval = 50 * time.Millisecond
	term, sim := rig(t, paytermsim.Options{}, opts)
	ctx := ctxT(t)
	sim.PowerLoss(2500 * time.Millisecond)
	r, err := term.Sale(ctx, "PL-2", 800)
	wantErr(t, err, "sale", "PL-2", payterm.ErrUnknownOutcome, devices.ErrTimeout)
	if r.State != payterm.Unknown || r.Auth != "" {
		t.Fatalf("Sale = %+v", r)
	}
	t.Log(err)

	var q payterm.Result
	eventually(t, "query after the reboot", func() bool {
		q, err = term.Query(ctx, "PL-2")
		if err != nil {
			wantErr(t, err, "query", "PL-2", devices.ErrTimeout)
			if q.State != payterm.Unknown {
				t.Fatalf("failed Query = %+v", q)
			}
		}
		return err == nil
	})
	if q.State != payterm.Approved || q.Amount != 800 {
		t.Fatalf("Query = %+v", q)
	}
	if n := sim.Status().Charges; n != 1 {
		t.Fatalf("charges = %d", n)
	}
}

// A reference is charged once, whatever the host repeats.
func TestSaleIdempotent(t *testing.T) {
	term, sim := rig(t, paytermsim.Options{}, testOpts)
	ctx := ctxT(t)
	first, err := term.Sale(ctx, "I-1", 1000)
	if err != nil || first.State != payterm.Approved {
		t.Fatalf("Sale = %+v, %v", first, err)
	}
	again, err := term.Sale(ctx, "I-1", 1000)
	if err != nil || again != first {
		t.Fatalf("Sale again = %+v, %v\nwant %+v", again, err, first)
	}
	other, err := term.Sale(ctx, "I-1", 2000)
	wantErr(t, err, "sale", "I-1", payterm.ErrConflict, payterm.ErrRejected)
	if other.State != payterm.Unknown {
		t.Fatalf("Sale under another amount = %+v", other)
	}
	var e *payterm.Error
	if errors.As(err, &e); e.Code != payterm.CodeRefConflict {
		t.Errorf("code = %v", e.Code)
	}

	// Two at once (a double click, or two replicas): one charge, one
	// outcome for both.
	sim.SetDelay(300 * time.Millisecond)
	var wg sync.WaitGroup
	results := make([]payterm.Result, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = term.Sale(ctx, "I-2", 4200) })
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || results[i].State != payterm.Approved {
			t.Fatalf("sale %d: %+v, %v", i, results[i], errs[i])
		}
	}
	if results[0] != results[1] {
		t.Fatalf("two outcomes for one reference:\n%+v\n%+v", results[0], results[1])
	}
	if n := sim.Status().Charges; n != 2 {
		t.Fatalf("charges = %d, want 2 (I-1 and I-2 once each)", n)
	}
	if n := len(sim.Journal()); n != 2 {
		t.Fatalf("journal holds %d sales", n)
	}
}

// A terminal whose transmit line is broken: the driver reports that it
// does not know, clearly, and never an approval it did not read.
func TestGarbage(t *testing.T) {
	opts := testOpts
	// Long enough for the garbage to arrive on a loaded machine (CI runs
	// every package at once under -race): with 100 ms the line sometimes
	// looked silent instead.
	opts.SaleTimeout = time.Second
	opts.AckTimeout = 400 * time.Millisecond
	opts.QueryTries = 2
	term, sim := rig(t, paytermsim.Options{}, opts)
	ctx := ctxT(t)
	sim.Garbage()
	r, err := term.Sale(ctx, "G-1", 600)
	wantErr(t, err, "sale", "G-1", payterm.ErrUnknownOutcome)
	if r.State != payterm.Unknown || r.Auth != "" {
		t.Fatalf("Sale = %+v", r)
	}
	if !strings.Contains(err.Error(), "garbage") {
		t.Errorf("error does not say the line is garbled: %v", err)
	}
	t.Log(err)
	if _, err := term.Status(ctx); err == nil {
		t.Fatal("Status succeeded on a garbled line")
	}

	// The terminal did take the money: once its line works, Query says so.
	eventually(t, "the terminal ends the sale", func() bool {
		e, _ := sim.Entry("G-1")
		return e.State == paytermsim.Approved
	})
	sim.Approve()
	q, err := term.Query(ctx, "G-1")
	if err != nil || q.State != payterm.Approved || q.Amount != 600 {
		t.Fatalf("Query = %+v, %v", q, err)
	}
	if n := sim.Status().Charges; n != 1 {
		t.Fatalf("charges = %d", n)
	}
}

func TestSaleChecksArguments(t *testing.T) {
	term, sim := rig(t, paytermsim.Options{}, testOpts)
	ctx := ctxT(t)
	for _, tc := range []struct {
		ref    string
		amount int64
		cause  error
	}{
		{"", 100, payterm.ErrBadRef},
		{strings.Repeat("x", 33), 100, payterm.ErrBadRef},
		{"账单1", 100, payterm.ErrBadRef},
		{"OK", 0, payterm.ErrBadAmount},
		{"OK", -100, payterm.ErrBadAmount},
	} {
		r, err := term.Sale(ctx, tc.ref, tc.amount)
		wantErr(t, err, "sale", tc.ref, tc.cause)
		if r.State != payterm.Unknown {
			t.Errorf("%q %d: %+v", tc.ref, tc.amount, r)
		}
	}
	if n := len(sim.Journal()); n != 0 {
		t.Fatalf("journal holds %d sales", n)
	}
}

// The simulator's end of the pty closing, as an unplugged adapter hangs
// up its tty, breaks the driver: Done closes and calls fail.
func TestPortFailure(t *testing.T) {
	link := filepath.Join(t.TempDir(), "payterm")
	p, err := firmwaresim.OpenPTY(link)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	port, err := devices.OpenSerial(devices.SerialConfig{Path: link, Baud: baud})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	term := payterm.New(port, &testOpts)
	defer term.Close()
	p.Close()
	select {
	case <-term.Done():
	case <-time.After(bound):
		t.Fatal("Done not closed after the hang-up")
	}
	if !errors.Is(term.Err(), devices.ErrPortFailed) {
		t.Fatalf("Err = %v", term.Err())
	}
	_, err = term.Query(context.Background(), "X")
	wantErr(t, err, "query", "X", devices.ErrPortFailed)

	term.Close()
	if !errors.Is(term.Err(), devices.ErrPortFailed) {
		t.Fatalf("Close replaced the failure: %v", term.Err())
	}
}

func TestClose(t *testing.T) {
	term, sim := rig(t, paytermsim.Options{}, testOpts)
	sim.Timeout()
	done := make(chan error, 1)
	go func() {
		_, err := term.Sale(context.Background(), "CL-1", 100)
		done <- err
	}()
	eventually(t, "sale in progress", func() bool { return sim.Status().Ref == "CL-1" })
	term.Close()
	select {
	case err := <-done:
		wantErr(t, err, "sale", "CL-1", payterm.ErrUnknownOutcome, payterm.ErrClosed)
	case <-time.After(bound):
		t.Fatal("Close did not end the Sale")
	}
}
