package billing_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"onecard/billing"
	"onecard/estate"
	gatewaysim "onecard/firmware-sim/gateway"
	"onecard/gateway"
	"onecard/store/storetest"
)

// TestQRPayments runs QR payments against the simulated gateway over HTTP:
// the order's QR, the payer paying on the "phone", the signed notification
// settling the payment once even when delivered twice, and a payment the
// owner gives up on closed at the gateway.
func TestQRPayments(t *testing.T) {
	merchant := gateway.GenerateKey()
	sim, err := gatewaysim.Start(gatewaysim.Options{Merchants: map[string]ed25519.PublicKey{"m1": merchant.Public().(ed25519.PublicKey)}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Stop()
	client, err := gateway.NewClient(gateway.Config{URL: sim.URL(), Merchant: "m1", Key: merchant, GatewayKeys: []ed25519.PublicKey{sim.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	var bk *books
	notify := httptest.NewServer(gateway.NotifyHandler(client, func(ctx context.Context, n gateway.Notification) error {
		return bk.b.OnGatewayNotification(ctx, n)
	}, quiet))
	defer notify.Close()
	bk = newBooksWith(t, storetest.SQLite(t), billing.Options{Gateway: client, NotifyURL: notify.URL})
	bk.b.Generate(bk.cashier, "2026-11")
	sim.SetTwice(true)

	// The resolvers run in the moment after the payment is committed,
	// before the order exists: this server's and another replica's on the
	// same database. Both leave the payment alone (the gateway would say
	// "not found").
	es, err := estate.Open(context.Background(), bk.db, "t1", "测试小区", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	replica, err := billing.Open(context.Background(), bk.db, es.Site(), billing.Options{Gateway: client, NotifyURL: notify.URL, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	replica.SetClock(func() time.Time { return time.Date(2026, 12, 20, 2, 0, 10, 0, time.UTC) }) // 10 s on
	billing.SetPaymentCommittedHook(func() { bk.b.Resolve(context.Background()); replica.Resolve(context.Background()) })
	p, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "qr-000001", Unit: "1-1-101", AmountFen: 22375, Method: "qr"})
	billing.SetPaymentCommittedHook(nil)
	if !errors.Is(err, billing.ErrOutcomeUnknown) || p.State != "sent" || p.QRContent == "" || p.ProviderTxn == "" {
		t.Fatalf("QR order: %+v %v", p, err)
	}
	if stored, _ := bk.b.Payment(context.Background(), p.ID); stored.State != "sent" {
		t.Fatalf("QR payment %s in the books while its order waits", stored.State)
	}
	if _, err := sim.Pay(p.ProviderTxn); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the notification settling the payment", func() bool {
		p, _ = bk.b.Payment(context.Background(), p.ID)
		return p.State == "settled"
	})
	waitFor(t, "the second delivery", func() bool { return len(sim.Deliveries()) >= 2 })
	var n int
	bk.db.Get(context.Background(), &n, "SELECT COUNT(*) FROM receipts")
	if n != 1 || p.Receipt == nil || p.Receipt.Method != "qr" {
		t.Fatalf("%d receipts for one QR payment: %+v", n, p.Receipt)
	}
	// Given up: closed at the gateway, nothing charged.
	q, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "qr-000002", Unit: "1-1-102", AmountFen: 45000, Method: "qr"})
	if !errors.Is(err, billing.ErrOutcomeUnknown) {
		t.Fatal(err)
	}
	if q, err = bk.b.CancelQR(bk.cashier, q.ID); err != nil || q.State != "declined" {
		t.Fatalf("cancel: %+v %v", q, err)
	}
	if a, _ := bk.b.Account(bk.cashier, "1-1-102"); a.DueFen != 45000 || a.PendingCard {
		t.Fatalf("account after a cancelled QR: %+v", a)
	}
}

// A payment recorded declined that the gateway then says was paid (its
// order was made after all) is settled: the money was taken, so the books
// show it, with a receipt; the bill having been paid meanwhile, the amount
// becomes the unit's credit.
func TestApprovalAfterDeclineSettles(t *testing.T) {
	merchant := gateway.GenerateKey()
	sim, err := gatewaysim.Start(gatewaysim.Options{Merchants: map[string]ed25519.PublicKey{"m1": merchant.Public().(ed25519.PublicKey)}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := gateway.NewClient(gateway.Config{URL: sim.URL(), Merchant: "m1", Key: merchant, GatewayKeys: []ed25519.PublicKey{sim.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	sim.Stop() // the gateway does not answer: the payment ends declined
	bk := newBooksWith(t, storetest.SQLite(t), billing.Options{Gateway: client, NotifyURL: "http://127.0.0.1:1/notify"})
	bk.b.Generate(bk.cashier, "2026-11")
	p, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "qr-late-01", Unit: "1-1-101", AmountFen: 22375, Method: "qr"})
	if code(err) != "gateway_unavailable" || p.State != "declined" {
		t.Fatalf("QR with the gateway down: %+v %v", p, err)
	}
	if _, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "cash-late-01", Unit: "1-1-101", AmountFen: 22375, Method: "cash", TenderedFen: 22375}); err != nil {
		t.Fatal(err)
	}
	err = bk.b.OnGatewayNotification(context.Background(), gateway.Notification{Ref: p.Ref, ProviderTxn: "T-LATE-1", State: gateway.StatePaid, AmountFen: 22375, PaidAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	p, _ = bk.b.Payment(context.Background(), p.ID)
	if p.State != "settled" || p.Receipt == nil || p.AuthCode != "T-LATE-1" {
		t.Fatalf("after the late approval: %+v", p)
	}
	if a, _ := bk.b.Account(bk.cashier, "1-1-101"); a.DueFen != 0 || a.CreditFen != 22375 {
		t.Fatalf("account: due %d credit %d, want 0 and 22375", a.DueFen, a.CreditFen)
	}
	var audits int
	bk.db.Get(context.Background(), &audits, "SELECT COUNT(*) FROM audit_log WHERE action = 'payment.settle' AND entity_id = ?", p.ID)
	if audits != 1 {
		t.Fatalf("%d settle audit rows", audits)
	}
	// The same notification again changes nothing.
	bk.b.OnGatewayNotification(context.Background(), gateway.Notification{Ref: p.Ref, ProviderTxn: "T-LATE-1", State: gateway.StatePaid, AmountFen: 22375, PaidAt: time.Now()})
	var receipts int
	bk.db.Get(context.Background(), &receipts, "SELECT COUNT(*) FROM receipts WHERE payment_id = ?", p.ID)
	if receipts != 1 {
		t.Fatalf("%d receipts", receipts)
	}
}
