package gateway_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	gatewaysim "onecard/firmware-sim/gateway"
	"onecard/gateway"
)

// These tests run the real client against the simulated gateway on
// 127.0.0.1, and take its notifications on a real HTTP server.

// step bounds every wait, so a broken gateway fails a test instead of
// hanging it.
const step = 5 * time.Second

// received is one notification as the receiver saw it.
type received struct {
	n      gateway.Notification
	err    error
	header http.Header
	body   []byte
}

// receiver is onecard's notification endpoint: it verifies and answers
// 204, or 401 for a notification that does not verify.
type receiver struct {
	url string
	got chan received
}

func newReceiver(t *testing.T, v gateway.Provider) *receiver {
	t.Helper()
	r := &receiver{got: make(chan received, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		n, err := v.Verify(req.Header, body)
		r.got <- received{n, err, req.Header.Clone(), body}
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/gateway/notify"
	return r
}

func (r *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case x := <-r.got:
		return x
	case <-time.After(step):
		t.Fatal("no notification")
	}
	return received{}
}

// none checks that no notification comes for a while.
func (r *receiver) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case x := <-r.got:
		t.Fatalf("unexpected notification %+v %v", x.n, x.err)
	case <-time.After(d):
	}
}

type env struct {
	sim    *gatewaysim.Sim
	client *gateway.Client
	rx     *receiver
}

// setup starts a gateway with merchant estate-1 and fast retries, a client
// for it, and a receiver verifying with window (0: the default).
func setup(t *testing.T, window time.Duration) *env {
	t.Helper()
	mk := gateway.GenerateKey()
	sim, err := gatewaysim.Start(gatewaysim.Options{
		Merchants: map[string]ed25519.PublicKey{"estate-1": mk.Public().(ed25519.PublicKey)},
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Stop() })
	if !strings.HasPrefix(sim.URL(), "http://127.0.0.1:") {
		t.Fatalf("gateway at %s, want 127.0.0.1", sim.URL())
	}
	cfg := gateway.Config{URL: sim.URL(), Merchant: "estate-1", Key: mk, GatewayKeys: []ed25519.PublicKey{sim.PublicKey()}}
	client, err := gateway.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Window = window
	v, err := gateway.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, client: client, rx: newReceiver(t, v)}
}

// newRef returns a fresh payment reference, billing's way.
func newRef() string {
	return "P" + time.Now().Format("060102") + strings.ToUpper(gateway.NewNonce()[:10])
}

func (e *env) create(t *testing.T, ref string, amount int64) gateway.Created {
	t.Helper()
	c, err := e.client.Create(context.Background(), gateway.Order{Ref: ref, AmountFen: amount, Subject: "3-1-502 物业服务费 2026-01", NotifyURL: e.rx.url})
	if err != nil {
		t.Fatalf("Create %s: %v", ref, err)
	}
	return c
}

func (e *env) query(t *testing.T, ref string) gateway.Status {
	t.Helper()
	st, err := e.client.Query(context.Background(), ref)
	if err != nil {
		t.Fatalf("Query %s: %v", ref, err)
	}
	return st
}

// page fetches a URL and returns its status and body.
func page(t *testing.T, method, u string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// deliveries waits until the gateway has recorded n delivery attempts
// (it records one once the receiver's answer is in).
func deliveries(t *testing.T, sim *gatewaysim.Sim, n int) []gatewaysim.Delivery {
	t.Helper()
	deadline := time.Now().Add(step)
	for {
		d := sim.Deliveries()
		if len(d) >= n || time.Now().After(deadline) {
			return d
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.HTTPStatus != status || ge.Code != code {
		t.Fatalf("error %v, want HTTP %d %s", err, status, code)
	}
}

// The whole flow: an order, its QR code, the payer's page, the payment,
// the notification, the query.
func TestPayByQRCode(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	ref := newRef()
	c := e.create(t, ref, 12345)
	if c.QRContent != e.sim.URL()+"/pay/"+c.ProviderTxn || !gateway.ValidTxn(c.ProviderTxn) {
		t.Fatalf("Created %+v, want a URL to %s/pay/{txn}", c, e.sim.URL())
	}
	if d := time.Until(c.ExpiresAt); d < gateway.DefaultExpiry-time.Minute || d > gateway.DefaultExpiry {
		t.Errorf("expires in %v", d)
	}
	// Creating again (a retry after a timeout) is the same order.
	if again := e.create(t, ref, 12345); again != c {
		t.Errorf("Create again = %+v, want %+v", again, c)
	}
	if st := e.query(t, ref); st.State != "pending" || st.ProviderTxn != c.ProviderTxn || st.AmountFen != 12345 || !st.PaidAt.IsZero() {
		t.Errorf("Query before paying = %+v", st)
	}
	code, html := page(t, "GET", c.QRContent)
	for _, want := range []string{"支付 ¥123.45", "取消", "3-1-502 物业服务费 2026-01", `formaction="/pay/` + c.ProviderTxn + `/pay"`} {
		if code != 200 || !strings.Contains(html, want) {
			t.Fatalf("pay page (HTTP %d) lacks %q:\n%s", code, want, html)
		}
	}
	e.rx.none(t, 50*time.Millisecond) // nothing before paying

	// The payer presses 支付 (the form posts, then the page shows the result).
	code, html = page(t, "POST", c.QRContent+"/pay")
	if code != 200 || !strings.Contains(html, "支付成功") {
		t.Fatalf("after paying (HTTP %d):\n%s", code, html)
	}
	r := e.rx.next(t)
	if r.err != nil {
		t.Fatalf("Verify: %v", r.err)
	}
	if r.n.Ref != ref || r.n.ProviderTxn != c.ProviderTxn || r.n.State != "paid" || r.n.AmountFen != 12345 || time.Since(r.n.PaidAt) > step {
		t.Fatalf("notification %+v", r.n)
	}
	st := e.query(t, ref)
	if want := (gateway.Status{State: "paid", ProviderTxn: c.ProviderTxn, AmountFen: 12345, PaidAt: r.n.PaidAt}); st != want {
		t.Errorf("Query after paying = %+v\nwant %+v", st, want)
	}
	e.rx.none(t, 100*time.Millisecond) // delivered once: it got a 2xx

	// A paid order cannot be created again, nor its ref reused.
	_, err := e.client.Create(context.Background(), gateway.Order{Ref: ref, AmountFen: 12345, Subject: "3-1-502 物业服务费 2026-01", NotifyURL: e.rx.url})
	wantCode(t, err, http.StatusConflict, "order_paid")
	_, err = e.client.Create(context.Background(), gateway.Order{Ref: ref, AmountFen: 100, Subject: "x", NotifyURL: e.rx.url})
	wantCode(t, err, http.StatusConflict, "ref_used")
	// Pressing 支付 again changes nothing.
	if code, html := page(t, "POST", c.QRContent+"/pay"); code != http.StatusConflict || !strings.Contains(html, "支付成功") {
		t.Errorf("paying twice: HTTP %d\n%s", code, html)
	}
	e.rx.none(t, 50*time.Millisecond)
}

// A notification delivered twice verifies twice, with the same
// transaction: the receiver applies it once, by ProviderTxn.
func TestDuplicateDelivery(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	e.sim.SetTwice(true)
	ref := newRef()
	c := e.create(t, ref, 500)
	if _, err := e.sim.Pay(c.ProviderTxn); err != nil {
		t.Fatal(err)
	}
	a, b := e.rx.next(t), e.rx.next(t)
	if a.err != nil || b.err != nil {
		t.Fatalf("Verify: %v, %v", a.err, b.err)
	}
	if a.n != b.n || a.n.ProviderTxn != c.ProviderTxn || a.n.Ref != ref {
		t.Errorf("notifications %+v and %+v", a.n, b.n)
	}
	if string(a.body) != string(b.body) || a.header.Get("Gateway-Nonce") != b.header.Get("Gateway-Nonce") {
		t.Errorf("the duplicate is not the same message")
	}
	e.rx.none(t, 100*time.Millisecond)
	d := deliveries(t, e.sim, 2)
	if len(d) != 2 || d[0].Kind != "first" || d[1].Kind != "duplicate" || d[0].Status != 204 || d[1].Status != 204 {
		t.Errorf("deliveries %+v", d)
	}
}

// A notification with a bad signature is refused; the gateway keeps
// delivering, and once signed right it verifies.
func TestBadSignature(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	e.sim.SetBadSig(true)
	c := e.create(t, newRef(), 700)
	if _, err := e.sim.Pay(c.ProviderTxn); err != nil {
		t.Fatal(err)
	}
	if r := e.rx.next(t); !errors.Is(r.err, gateway.ErrBadSignature) {
		t.Fatalf("bad signature: %+v, %v", r.n, r.err)
	}
	e.sim.SetBadSig(false)
	for {
		r := e.rx.next(t)
		if r.err == nil {
			if r.n.ProviderTxn != c.ProviderTxn || r.n.State != "paid" {
				t.Fatalf("notification %+v", r.n)
			}
			break
		}
		if !errors.Is(r.err, gateway.ErrBadSignature) {
			t.Fatalf("retry: %v", r.err)
		}
	}
	var d []gatewaysim.Delivery
	for deadline := time.Now().Add(step); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if d = e.sim.Deliveries(); d[len(d)-1].Status == 204 {
			break // the last answer is in
		}
	}
	if len(d) < 2 || !d[0].BadSig || d[0].Status != 401 || d[len(d)-1].BadSig || d[len(d)-1].Status != 204 || d[len(d)-1].Kind != "retry" {
		t.Errorf("deliveries %+v", d)
	}
}

// A notification delivered after the window (signed at payment time,
// held back) is refused as stale; the gateway's retry, signed afresh,
// verifies.
func TestLateDelivery(t *testing.T) {
	t.Parallel()
	e := setup(t, 2*time.Second)
	e.sim.SetLate(3500 * time.Millisecond)
	c := e.create(t, newRef(), 900)
	paid := time.Now()
	if _, err := e.sim.Pay(c.ProviderTxn); err != nil {
		t.Fatal(err)
	}
	e.rx.none(t, 3*time.Second) // held back
	r := e.rx.next(t)
	if !errors.Is(r.err, gateway.ErrStale) || time.Since(paid) < 3500*time.Millisecond {
		t.Fatalf("late delivery: %+v, %v", r.n, r.err)
	}
	r = e.rx.next(t)
	if r.err != nil || r.n.ProviderTxn != c.ProviderTxn {
		t.Fatalf("retry: %+v, %v", r.n, r.err)
	}
	d := deliveries(t, e.sim, 2)
	if len(d) != 2 || d[0].Kind != "late" || d[0].Status != 401 || d[1].Kind != "retry" || d[1].Status != 204 {
		t.Errorf("deliveries %+v", d)
	}
}

// A notification altered on its way is refused; replayed as it was,
// within the window, it verifies (the receiver is idempotent).
func TestAlteredNotification(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	c := e.create(t, newRef(), 1000)
	if _, err := e.sim.Pay(c.ProviderTxn); err != nil {
		t.Fatal(err)
	}
	r := e.rx.next(t)
	if r.err != nil {
		t.Fatal(r.err)
	}
	v, _ := gateway.NewClient(gateway.Config{URL: e.sim.URL(), Merchant: "estate-1", Key: gateway.GenerateKey(), GatewayKeys: []ed25519.PublicKey{e.sim.PublicKey()}})
	for name, body := range map[string]string{
		"amount":   strings.Replace(string(r.body), `"amount_fen":1000`, `"amount_fen":100000`, 1),
		"state":    strings.Replace(string(r.body), `"paid"`, `"closed"`, 1),
		"ref":      strings.Replace(string(r.body), r.n.Ref, newRef(), 1),
		"appended": string(r.body) + "\n",
	} {
		if body == string(r.body) {
			t.Fatalf("%s: nothing altered in %s", name, r.body)
		}
		if _, err := v.Verify(r.header, []byte(body)); !errors.Is(err, gateway.ErrBadSignature) {
			t.Errorf("%s altered: %v", name, err)
		}
	}
	if n, err := v.Verify(r.header, r.body); err != nil || n != r.n {
		t.Errorf("replayed within the window: %+v, %v", n, err)
	}
	h := r.header.Clone()
	h.Del("Gateway-Signature")
	if _, err := v.Verify(h, r.body); !errors.Is(err, gateway.ErrMissingHeader) {
		t.Errorf("without its signature: %v", err)
	}
	// Another estate on the same gateway: a notification for another
	// merchant is not ours, however well signed.
	other, _ := gateway.NewClient(gateway.Config{URL: e.sim.URL(), Merchant: "estate-2", Key: gateway.GenerateKey(), GatewayKeys: []ed25519.PublicKey{e.sim.PublicKey()}})
	if _, err := other.Verify(r.header, r.body); !errors.Is(err, gateway.ErrMalformed) {
		t.Errorf("another merchant's notification: %v", err)
	}
}

func TestUnknownRef(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	for _, op := range []func(context.Context, string) (gateway.Status, error){e.client.Query, e.client.Close} {
		st, err := op(context.Background(), "NEVER-SEEN-1")
		if err != nil || st != (gateway.Status{State: "not_found"}) {
			t.Errorf("= %+v, %v; want not_found", st, err)
		}
	}
	if _, err := e.client.Query(context.Background(), "../v1/orders"); !errors.Is(err, gateway.ErrMalformed) {
		t.Errorf("a malformed ref: %v", err)
	}
	if code, _ := page(t, "GET", e.sim.URL()+"/pay/GW0000"); code != 404 {
		t.Errorf("pay page of no order: HTTP %d", code)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	ctx := context.Background()

	// Closed by the gateway: notified.
	refA := newRef()
	a := e.create(t, refA, 300)
	if _, err := e.sim.Close(a.ProviderTxn); err != nil {
		t.Fatal(err)
	}
	r := e.rx.next(t)
	if r.err != nil || r.n != (gateway.Notification{Ref: refA, ProviderTxn: a.ProviderTxn, State: "closed", AmountFen: 300}) {
		t.Fatalf("close notification %+v, %v", r.n, r.err)
	}
	if st := e.query(t, refA); st.State != "closed" || st.ProviderTxn != a.ProviderTxn {
		t.Errorf("Query = %+v", st)
	}
	if _, err := e.sim.Pay(a.ProviderTxn); !errors.Is(err, gatewaysim.ErrNotPending) {
		t.Errorf("Pay a closed order: %v", err)
	}
	if _, html := page(t, "GET", a.QRContent); !strings.Contains(html, "订单已关闭") || strings.Contains(html, "支付 ¥") {
		t.Errorf("page of a closed order:\n%s", html)
	}
	_, err := e.client.Create(ctx, gateway.Order{Ref: refA, AmountFen: 300, Subject: "3-1-502 物业服务费 2026-01", NotifyURL: e.rx.url})
	wantCode(t, err, http.StatusConflict, "order_closed")

	// Closed by us: no notification (we know).
	refB := newRef()
	b := e.create(t, refB, 400)
	st, err := e.client.Close(ctx, refB)
	if err != nil || st.State != "closed" || st.ProviderTxn != b.ProviderTxn {
		t.Fatalf("Close = %+v, %v", st, err)
	}
	if st := e.query(t, refB); st.State != "closed" {
		t.Errorf("Query after Close = %+v", st)
	}
	if code, _ := page(t, "POST", b.QRContent+"/pay"); code != http.StatusConflict {
		t.Errorf("paying a closed order: HTTP %d", code)
	}
	e.rx.none(t, 100*time.Millisecond)

	// Paid before we close it: Close says paid, and the money must be taken.
	refC := newRef()
	c := e.create(t, refC, 500)
	e.sim.Pay(c.ProviderTxn)
	if r := e.rx.next(t); r.err != nil || r.n.State != "paid" {
		t.Fatalf("paid: %+v %v", r.n, r.err)
	}
	if st, err := e.client.Close(ctx, refC); err != nil || st.State != "paid" || st.PaidAt.IsZero() {
		t.Errorf("Close a paid order = %+v, %v", st, err)
	}

	// The payer presses 取消.
	refD := newRef()
	d := e.create(t, refD, 600)
	if code, html := page(t, "POST", d.QRContent+"/cancel"); code != 200 || !strings.Contains(html, "订单已关闭") {
		t.Errorf("cancel: HTTP %d\n%s", code, html)
	}
	if r := e.rx.next(t); r.err != nil || r.n.State != "closed" || r.n.Ref != refD {
		t.Errorf("cancel notification %+v, %v", r.n, r.err)
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	ref := newRef()
	c, err := e.client.Create(context.Background(), gateway.Order{Ref: ref, AmountFen: 100, Subject: "工本费", NotifyURL: e.rx.url, ExpiresAt: time.Now().Add(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(c.ExpiresAt) + 10*time.Millisecond)
	if st := e.query(t, ref); st.State != "closed" {
		t.Errorf("Query after expiry = %+v", st)
	}
	if _, err := e.sim.Pay(c.ProviderTxn); !errors.Is(err, gatewaysim.ErrNotPending) {
		t.Errorf("Pay after expiry: %v", err)
	}
	if _, html := page(t, "GET", c.QRContent); !strings.Contains(html, "订单已过期") {
		t.Errorf("page:\n%s", html)
	}
	for name, o := range map[string]gateway.Order{
		"past":     {Ref: newRef(), AmountFen: 1, Subject: "x", NotifyURL: e.rx.url, ExpiresAt: time.Now().Add(-time.Second)},
		"too far":  {Ref: newRef(), AmountFen: 1, Subject: "x", NotifyURL: e.rx.url, ExpiresAt: time.Now().Add(48 * time.Hour)},
		"amount":   {Ref: newRef(), AmountFen: 0, Subject: "x", NotifyURL: e.rx.url},
		"subject":  {Ref: newRef(), AmountFen: 1, NotifyURL: e.rx.url},
		"control":  {Ref: newRef(), AmountFen: 1, Subject: "a\nb", NotifyURL: e.rx.url},
		"URL":      {Ref: newRef(), AmountFen: 1, Subject: "x", NotifyURL: "/notify"},
		"ref long": {Ref: strings.Repeat("R", 33), AmountFen: 1, Subject: "x", NotifyURL: e.rx.url},
	} {
		if _, err := e.client.Create(context.Background(), o); !errors.Is(err, gateway.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	e.rx.none(t, 50*time.Millisecond)
}

// The client trusts only answers signed by the gateway's key, and the
// gateway only requests signed by the merchant's.
func TestKeysMustMatch(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	ctx := context.Background()
	cfg := gateway.Config{URL: e.sim.URL(), Merchant: "estate-1", Key: gateway.GenerateKey(), GatewayKeys: []ed25519.PublicKey{e.sim.PublicKey()}}
	wrongKey, _ := gateway.NewClient(cfg)
	_, err := wrongKey.Query(ctx, "P1")
	wantCode(t, err, http.StatusUnauthorized, "bad_signature")
	cfg.Merchant = "estate-9"
	stranger, _ := gateway.NewClient(cfg)
	_, err = stranger.Query(ctx, "P1")
	wantCode(t, err, http.StatusUnauthorized, "unknown_merchant")

	impostor, _ := gateway.NewClient(gateway.Config{URL: e.sim.URL(), Merchant: "estate-1", Key: gateway.GenerateKey(),
		GatewayKeys: []ed25519.PublicKey{gateway.GenerateKey().Public().(ed25519.PublicKey)}})
	if _, err := impostor.Query(ctx, "P1"); !errors.Is(err, gateway.ErrUnknownKey) {
		t.Errorf("an answer signed by a key we do not know: %v", err)
	}
	// A gateway somewhere else: nothing listening.
	gone, _ := gateway.NewClient(gateway.Config{URL: "http://127.0.0.1:1", Merchant: "estate-1", Key: gateway.GenerateKey(), GatewayKeys: []ed25519.PublicKey{e.sim.PublicKey()}})
	if _, err := gone.Query(ctx, "P1"); err == nil {
		t.Error("nobody listening, and no error")
	}
}

// NotifyHandler as onecard mounts it: applied once per transaction however
// often it comes; a forged one is answered 401 and the gateway retries.
func TestNotifyHandler(t *testing.T) {
	t.Parallel()
	mk := gateway.GenerateKey()
	sim, err := gatewaysim.Start(gatewaysim.Options{
		Merchants: map[string]ed25519.PublicKey{"estate-1": mk.Public().(ed25519.PublicKey)},
		RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Stop()
	client, err := gateway.NewClient(gateway.Config{URL: sim.URL(), Merchant: "estate-1", Key: mk, GatewayKeys: []ed25519.PublicKey{sim.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	applied := make(chan gateway.Notification, 10)
	var mu sync.Mutex
	books := map[string]bool{} // by ProviderTxn: the receiver's idempotency
	fail := 1                  // the first apply fails (the database was busy)
	srv := httptest.NewServer(gateway.NotifyHandler(client, func(_ context.Context, n gateway.Notification) error {
		mu.Lock()
		defer mu.Unlock()
		if fail > 0 {
			fail--
			return errors.New("database is locked")
		}
		if !books[n.ProviderTxn] {
			books[n.ProviderTxn] = true
			applied <- n
		}
		return nil
	}, nil))
	defer srv.Close()

	sim.SetTwice(true)
	sim.SetBadSig(true)
	c, err := client.Create(context.Background(), gateway.Order{Ref: newRef(), AmountFen: 2500, Subject: "车位管理费", NotifyURL: srv.URL + "/notify"})
	if err != nil {
		t.Fatal(err)
	}
	sim.Pay(c.ProviderTxn)
	deadline := time.Now().Add(step)
	for len(sim.Deliveries()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	sim.SetBadSig(false)
	select {
	case n := <-applied:
		if n.ProviderTxn != c.ProviderTxn || n.AmountFen != 2500 {
			t.Fatalf("applied %+v", n)
		}
	case <-time.After(step):
		t.Fatal("never applied")
	}
	for time.Now().Before(deadline) {
		if d := sim.Deliveries(); d[len(d)-1].Kind == "duplicate" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var statuses []int
	for _, d := range sim.Deliveries() {
		statuses = append(statuses, d.Status)
	}
	// 401 while the signature was bad, 500 when apply failed, then 204,
	// and 204 again for the duplicate.
	if n := len(statuses); n < 4 || statuses[0] != 401 || statuses[n-3] != 500 || statuses[n-2] != 204 || statuses[n-1] != 204 {
		t.Errorf("statuses %v", statuses)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(applied) != 0 || len(books) != 1 {
		t.Errorf("applied %d more, books %v", len(applied), books)
	}
	// Only POST.
	if code, _ := page(t, "GET", srv.URL+"/notify"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: HTTP %d", code)
	}
}
