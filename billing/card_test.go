package billing_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"onecard/billing"
	"onecard/devices/payterm"
	firmwaresim "onecard/firmware-sim"
	paytermsim "onecard/firmware-sim/payterm"
	"onecard/store/storetest"
	"onecard/terminal"
)

// startTerminal runs the terminal simulator on a pty and the terminal over
// it, as onecard serve does with a real one, and opens books using it.
func startTerminal(t *testing.T) (*books, *paytermsim.Sim) {
	t.Helper()
	return startTerminalWith(t, func(term billing.Terminal) billing.Options { return billing.Options{Terminal: term} })
}

// startTerminalWith is startTerminal with the books' options made around
// the terminal.
func startTerminalWith(t *testing.T, opts func(billing.Terminal) billing.Options) (*books, *paytermsim.Sim) {
	t.Helper()
	dir := t.TempDir()
	pty, err := firmwaresim.OpenPTY(dir + "/payterm.pty")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := paytermsim.New(paytermsim.Options{Baud: 115200, Delay: 50 * time.Millisecond, Reboot: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sim.Serve(ctx, pty) }()
	term := terminal.Open(ctx, dir+"/payterm.pty", &payterm.Opts{Baud: 115200}, quiet)
	t.Cleanup(func() { cancel(); <-done; pty.Close() })
	waitFor(t, "the terminal to connect", term.Ready)
	bk := newBooksWith(t, storetest.SQLite(t), opts(term))
	return bk, sim
}

// A kiosk's own terminal: its payments are charged there, asked there when
// the outcome is unknown, and printed on the kiosk's printer; the desk,
// without a terminal, takes no card.
func TestKioskTerminalAndPrinterByName(t *testing.T) {
	bk, sim := startTerminalWith(t, func(term billing.Terminal) billing.Options {
		return billing.Options{Terminals: map[string]billing.Terminal{"lobby-1": term}}
	})
	bk.b.Generate(bk.cashier, "2026-11")
	if _, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "desk-card-1", Unit: "1-1-101", AmountFen: 22375, Method: "card"}); code(err) != "no_terminal" {
		t.Fatalf("a card at the desk without a terminal: %v", err)
	}
	if _, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "other-card-1", Unit: "1-1-101", AmountFen: 22375, Method: "card", Terminal: "lobby-2"}); code(err) != "no_terminal" {
		t.Fatalf("a card on a terminal not configured: %v", err)
	}
	sim.PowerLoss(3 * time.Second)
	ctx, cancel := context.WithTimeout(bk.cashier, time.Second)
	p, err := bk.b.Pay(ctx, billing.PayInput{IdemKey: "kiosk-card-1", Unit: "1-1-101", AmountFen: 22375, Method: "card", Terminal: "lobby-1", Printer: "lobby-1-printer"})
	cancel()
	if !errors.Is(err, billing.ErrOutcomeUnknown) || p.Terminal != "lobby-1" {
		t.Fatalf("power loss at the kiosk: %+v %v", p, err)
	}
	waitFor(t, "the resolver to ask the kiosk's terminal", func() bool {
		bk.b.Resolve(context.Background())
		p, _ = bk.b.Payment(context.Background(), p.ID)
		return p.State == "settled"
	})
	jobs, err := bk.b.PrintJobs(context.Background())
	if err != nil || len(jobs) != 1 || jobs[0].Printer != "lobby-1-printer" || jobs[0].Kind != "receipt" {
		t.Fatalf("print jobs: %+v %v", jobs, err)
	}
	if n := len(sim.Journal()); n != 1 {
		t.Fatalf("%d sales on the kiosk's terminal", n)
	}
}

func TestCardPayments(t *testing.T) {
	bk, sim := startTerminal(t)
	for _, p := range []string{"2026-10", "2026-11"} {
		bk.b.Generate(bk.cashier, p)
	}
	// Approved: settled with a receipt showing the card.
	p, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "card-0001", Unit: "1-1-101", AmountFen: 22375, Method: "card"})
	if err != nil || p.State != "settled" || p.Receipt == nil || p.CardLast4 == "" || p.AuthCode == "" {
		t.Fatalf("approved: %+v %v", p, err)
	}
	// Declined: nothing changes but the attempt's record.
	if err := sim.Decline("51", "insufficient funds"); err != nil {
		t.Fatal(err)
	}
	p, err = bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "card-0002", Unit: "1-1-101", AmountFen: 22375, Method: "card"})
	if code(err) != "card_declined" || p.State != "declined" || p.Receipt != nil {
		t.Fatalf("declined: %+v %v", p, err)
	}
	// Power lost after approving: the driver cannot learn the outcome in
	// time; the payment waits as unknown until the resolver asks the
	// terminal, whose journal says approved.
	sim.Approve()
	sim.PowerLoss(3 * time.Second)
	ctx, cancel := context.WithTimeout(bk.cashier, time.Second)
	p, err = bk.b.Pay(ctx, billing.PayInput{IdemKey: "card-0003", Unit: "1-1-101", AmountFen: 22375, Method: "card"})
	cancel()
	if !errors.Is(err, billing.ErrOutcomeUnknown) || p.State != "unknown" {
		t.Fatalf("power loss: %+v %v", p, err)
	}
	a, _ := bk.b.Account(bk.cashier, "1-1-101")
	if !a.PendingCard || a.DueFen != 22375 {
		t.Fatalf("account while unknown: %+v", a)
	}
	waitFor(t, "the resolver to settle it", func() bool {
		bk.b.Resolve(context.Background())
		p, _ = bk.b.Payment(context.Background(), p.ID)
		return p.State == "settled"
	})
	if p.Receipt == nil || p.Receipt.Number != "2026-000002" {
		t.Fatalf("resolved payment: %+v", p)
	}
	a, _ = bk.b.Account(bk.cashier, "1-1-101")
	if a.PendingCard || a.DueFen != 0 {
		t.Fatalf("account after: %+v", a)
	}
	// The same key again: the same payment, not a second charge.
	again, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "card-0003", Unit: "1-1-101", AmountFen: 22375, Method: "card"})
	if err != nil || again.ID != p.ID {
		t.Fatalf("repeat: %+v %v", again, err)
	}
	if n := len(sim.Journal()); n != 3 {
		t.Fatalf("%d sales on the terminal", n)
	}
}

// The resolver asks the terminal about waiting payments all the time while
// card payments go through: it must never ask about a sale before it is
// sent (the terminal would answer "not found" and the payment end declined
// while the customer is charged). Every sale the terminal approved is
// settled in the books. (The crash test once caught the resolver in the
// moment between a payment's commit and its sale; the hook puts it there.)
func TestResolverNeverOvertakesASale(t *testing.T) {
	bk, sim := startTerminal(t)
	bk.b.Generate(bk.cashier, "2026-11")
	stop := make(chan struct{})
	resolving := make(chan struct{})
	go func() {
		defer close(resolving)
		for {
			select {
			case <-stop:
				return
			default:
				bk.b.Resolve(context.Background())
			}
		}
	}()
	// And once exactly in the moment after a payment's commit, before its
	// sale is sent.
	resolved := 0
	billing.SetPaymentCommittedHook(func() { resolved++; bk.b.Resolve(context.Background()) })
	defer billing.SetPaymentCommittedHook(nil)
	const n = 20
	for i := range n {
		key := fmt.Sprintf("race-%04d", i)
		p, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: key, Unit: "1-1-101", AmountFen: 100, Method: "card"})
		if err != nil || p.State != "settled" {
			t.Errorf("payment %d: %s %q %v", i, p.State, p.Outcome, err)
		}
	}
	close(stop)
	<-resolving
	if resolved != n {
		t.Fatalf("the hook ran %d times for %d payments", resolved, n)
	}
	// Never declined on the way (an approval after a decline would settle
	// it too, loudly: that is the safety net, not the way).
	var declined int
	bk.db.Get(context.Background(), &declined, "SELECT COUNT(*) FROM audit_log WHERE action = 'payment.declined'")
	if declined != 0 {
		t.Fatalf("%d payments declined on the way", declined)
	}
	j := sim.Journal()
	if len(j) != n {
		t.Fatalf("%d sales on the terminal, want %d", len(j), n)
	}
	for _, e := range j {
		var state string
		bk.db.Get(context.Background(), &state, "SELECT state FROM payments WHERE ref = ?", e.Ref)
		if e.State != paytermsim.Approved || state != "settled" {
			t.Errorf("sale %s: %s on the terminal, %s in the books", e.Ref, e.State, state)
		}
	}
}
