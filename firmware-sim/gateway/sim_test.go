package gatewaysim_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gatewaysim "onecard/firmware-sim/gateway"
	"onecard/gateway"
)

const step = 5 * time.Second

// merchant is estate-1's key.
var merchant = gateway.GenerateKey()

func start(t *testing.T, o gatewaysim.Options) *gatewaysim.Sim {
	t.Helper()
	o.Merchants = map[string]ed25519.PublicKey{"estate-1": merchant.Public().(ed25519.PublicKey)}
	if o.RetryBase == 0 {
		o.RetryBase, o.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	}
	s, err := gatewaysim.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func client(t *testing.T, s *gatewaysim.Sim) *gateway.Client {
	t.Helper()
	c, err := gateway.NewClient(gateway.Config{URL: s.URL(), Merchant: "estate-1", Key: merchant, GatewayKeys: []ed25519.PublicKey{s.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sink is a notification endpoint answering with the statuses given in
// turn (the last one for ever after).
type sink struct {
	url string
	mu  sync.Mutex
	n   int
}

func newSink(t *testing.T, statuses ...int) *sink {
	t.Helper()
	k := &sink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		k.mu.Lock()
		i := min(k.n, len(statuses)-1)
		k.n++
		k.mu.Unlock()
		w.WriteHeader(statuses[i])
	}))
	t.Cleanup(srv.Close)
	k.url = srv.URL + "/notify"
	return k
}

func order(t *testing.T, s *gatewaysim.Sim, ref, notify string) gateway.Created {
	t.Helper()
	c, err := client(t, s).Create(context.Background(), gateway.Order{Ref: ref, AmountFen: 880, Subject: "水费", NotifyURL: notify})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitDeliveries waits until the gateway has recorded n attempts.
func waitDeliveries(t *testing.T, s *gatewaysim.Sim, n int) []gatewaysim.Delivery {
	t.Helper()
	deadline := time.Now().Add(step)
	for {
		d := s.Deliveries()
		if len(d) >= n {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries, want %d: %+v", len(d), n, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// call sends a request signed by hand: at ts with nonce, over signPath and
// signBody, sent to path with body.
func call(t *testing.T, s *gatewaysim.Sim, key ed25519.PrivateKey, who, method, path, signPath, body, signBody string, ts int64, nonce string) (int, gateway.ErrorBody, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	req.Header.Set(gateway.HeaderMerchant, who)
	if key != nil {
		gateway.Sign(key, ts, nonce, gateway.RequestMessage(method, signPath, who, ts, nonce, []byte(signBody))).Set(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	// Every answer, refusals too, is signed over our nonce.
	if key == nil {
		nonce = "" // not sent
	}
	sig, err := gateway.ReadSignature(resp.Header)
	if err == nil {
		err = sig.Check(s.PublicKey(), gateway.ResponseMessage(nonce, resp.StatusCode, sig.Timestamp, sig.Nonce, rb), time.Now(), gateway.DefaultWindow)
	}
	if err != nil {
		t.Errorf("%s %s: answer's signature: %v", method, path, err)
	}
	var eb gateway.ErrorBody
	json.Unmarshal(rb, &eb)
	return resp.StatusCode, eb, rb
}

func TestRequests(t *testing.T) {
	s := start(t, gatewaysim.Options{})
	sink := newSink(t, 204)
	now := time.Now().Unix()
	create := func(ref string, amount int64, subject string) string {
		b, _ := json.Marshal(gateway.CreateRequest{Ref: ref, AmountFen: amount, Subject: subject, NotifyURL: sink.url, ExpiresAt: time.Now().Add(time.Hour).UTC()})
		return string(b)
	}
	body := create("R-1", 100, "物业服务费")
	water, altered, altSigned, zero := create("R-1", 100, "水费"), create("R-2", 100000, "x"), create("R-2", 100, "x"), create("R-3", 0, "x")
	other := gateway.GenerateKey()
	n1 := gateway.NewNonce()
	for _, tc := range []struct {
		name              string
		key               ed25519.PrivateKey
		who, method, path string
		signPath          string
		body, signBody    string
		ts                int64
		nonce             string
		status            int
		code              string
	}{
		{"create", merchant, "estate-1", "POST", "/v1/orders", "/v1/orders", body, body, now, n1, 201, ""},
		{"the same nonce again", merchant, "estate-1", "POST", "/v1/orders", "/v1/orders", body, body, now, n1, 401, "replayed_nonce"},
		{"create again", merchant, "estate-1", "POST", "/v1/orders", "/v1/orders", body, body, now, gateway.NewNonce(), 200, ""},
		{"ref used", merchant, "estate-1", "POST", "/v1/orders", "/v1/orders", water, water, now, gateway.NewNonce(), 409, "ref_used"},
		{"stale", merchant, "estate-1", "POST", "/v1/orders", "/v1/orders", body, body, now - 330, gateway.NewNonce(), 401, "stale_request"},
		{"from the future", merchant, "estate-1", "POST", "/v1/orders", "/v1/orders", body, body, now + 330, gateway.NewNonce(), 401, "stale_request"},
		{"unsigned", nil, "estate-1", "GET", "/v1/orders/R-1", "", "", "", now, gateway.NewNonce(), 401, "bad_signature"},
		{"another key", other, "estate-1", "GET", "/v1/orders/R-1", "/v1/orders/R-1", "", "", now, gateway.NewNonce(), 401, "bad_signature"},
		{"unknown merchant", merchant, "estate-2", "GET", "/v1/orders/R-1", "/v1/orders/R-1", "", "", now, gateway.NewNonce(), 401, "unknown_merchant"},
		{"no merchant", merchant, "", "GET", "/v1/orders/R-1", "/v1/orders/R-1", "", "", now, gateway.NewNonce(), 401, "unknown_merchant"},
		{"body altered", merchant, "estate-1", "POST", "/v1/orders", "/v1/orders", altered, altSigned, now, gateway.NewNonce(), 401, "bad_signature"},
		{"path altered", merchant, "estate-1", "POST", "/v1/orders/R-1/close", "/v1/orders/R-9/close", "", "", now, gateway.NewNonce(), 401, "bad_signature"},
		{"read back", merchant, "estate-1", "GET", "/v1/orders/R-1", "/v1/orders/R-1", "", "", now, gateway.NewNonce(), 200, ""},
		{"not JSON", merchant, "estate-1", "POST", "/v1/orders", "/v1/orders", "ref=R-3", "ref=R-3", now, gateway.NewNonce(), 400, "invalid_request"},
		{"amount zero", merchant, "estate-1", "POST", "/v1/orders", "/v1/orders", zero, zero, now, gateway.NewNonce(), 400, "invalid_request"},
		{"amount a string", merchant, "estate-1", "POST", "/v1/orders", "/v1/orders", `{"ref":"R-3","amount_fen":"1"}`, `{"ref":"R-3","amount_fen":"1"}`, now, gateway.NewNonce(), 400, "invalid_request"},
		{"ref malformed", merchant, "estate-1", "GET", "/v1/orders/R%201", "/v1/orders/R%201", "", "", now, gateway.NewNonce(), 400, "invalid_request"},
		{"not found", merchant, "estate-1", "GET", "/v1/orders/R-404", "/v1/orders/R-404", "", "", now, gateway.NewNonce(), 404, "not_found"},
	} {
		status, eb, raw := call(t, s, tc.key, tc.who, tc.method, tc.path, tc.signPath, tc.body, tc.signBody, tc.ts, tc.nonce)
		if status != tc.status || eb.Code != tc.code {
			t.Errorf("%s: HTTP %d %q, want %d %q: %s", tc.name, status, eb.Code, tc.status, tc.code, raw)
		}
	}
	// A request signed for GET is not a POST.
	n := gateway.NewNonce()
	req, _ := http.NewRequest("POST", s.URL()+"/v1/orders/R-1/close", nil)
	req.Header.Set(gateway.HeaderMerchant, "estate-1")
	gateway.Sign(merchant, now, n, gateway.RequestMessage("GET", "/v1/orders/R-1/close", "estate-1", now, n, nil)).Set(req.Header)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("GET's signature on a POST: %v %v", resp.StatusCode, err)
	}
	if o, ok := s.Find("R-1"); !ok || o.State != "pending" || o.AmountFen != 100 || o.Subject != "物业服务费" {
		t.Errorf("R-1: %+v", o)
	}
	if st := s.Status(); st.Orders != 1 || st.Pending != 1 {
		t.Errorf("status %+v", st)
	}
}

// A notification not answered with a 2xx is sent again, each time later,
// signed afresh, until it is.
func TestRetries(t *testing.T) {
	t.Parallel()
	s := start(t, gatewaysim.Options{RetryBase: 40 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	k := newSink(t, 500, 503, 404, 200)
	c := order(t, s, "R-RETRY", k.url)
	if _, err := s.Pay(c.ProviderTxn); err != nil {
		t.Fatal(err)
	}
	d := waitDeliveries(t, s, 4)
	for i, want := range []struct {
		kind   string
		status int
		gap    time.Duration
	}{{"first", 500, 0}, {"retry", 503, 40 * time.Millisecond}, {"retry", 404, 80 * time.Millisecond}, {"retry", 200, 100 * time.Millisecond}} {
		if d[i].Kind != want.kind || d[i].Status != want.status || d[i].Attempt != i+1 || d[i].Txn != c.ProviderTxn || d[i].State != "paid" {
			t.Errorf("delivery %d: %+v", i, d[i])
		}
		if i > 0 {
			if gap := d[i].At.Sub(d[i-1].At); gap < want.gap {
				t.Errorf("delivery %d came %v after the one before, want ≥ %v", i, gap, want.gap)
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	if d := s.Deliveries(); len(d) != 4 {
		t.Errorf("after the 2xx: %+v", d)
	}
}

func TestGivesUp(t *testing.T) {
	t.Parallel()
	s := start(t, gatewaysim.Options{Attempts: 3})
	k := newSink(t, 500)
	c := order(t, s, "R-NEVER", k.url)
	s.Pay(c.ProviderTxn)
	waitDeliveries(t, s, 3)
	time.Sleep(300 * time.Millisecond)
	if d := s.Deliveries(); len(d) != 3 {
		t.Errorf("%d deliveries, want 3", len(d))
	}
	if st := s.Status(); st.Delivering != 0 || st.Paid != 1 {
		t.Errorf("status %+v", st)
	}
	// Nobody listening: no status, the reason instead.
	c = order(t, s, "R-NOBODY", "http://127.0.0.1:1/notify")
	s.Pay(c.ProviderTxn)
	d := waitDeliveries(t, s, 4)
	if d[3].Status != 0 || d[3].Err == "" {
		t.Errorf("to nobody: %+v", d[3])
	}
}

// Stop drops what is still to deliver, at once.
func TestStop(t *testing.T) {
	t.Parallel()
	o := gatewaysim.Options{Merchants: map[string]ed25519.PublicKey{"estate-1": merchant.Public().(ed25519.PublicKey)}}
	s, err := gatewaysim.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	k := newSink(t, 204)
	s.SetLate(time.Hour)
	c := order(t, s, "R-STOP", k.url)
	s.Pay(c.ProviderTxn)
	if st := s.Status(); st.Delivering != 1 || st.Late != time.Hour {
		t.Errorf("status %+v", st)
	}
	t0 := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if time.Since(t0) > time.Second || s.Status().Delivering != 0 {
		t.Errorf("Stop took %v; %+v", time.Since(t0), s.Status())
	}
	if _, err := http.Get(s.URL() + "/"); err == nil {
		t.Error("still listening after Stop")
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop twice: %v", err)
	}
	select {
	case err := <-s.Served():
		t.Errorf("Served after Stop: %v", err)
	default:
	}
}

// A Sim is also a plain http.Handler; its QR codes then point where the
// request came.
func TestHandler(t *testing.T) {
	t.Parallel()
	s, err := gatewaysim.New(gatewaysim.Options{Merchants: map[string]ed25519.PublicKey{"estate-1": merchant.Public().(ed25519.PublicKey)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, err := gateway.NewClient(gateway.Config{URL: srv.URL, Merchant: "estate-1", Key: merchant, GatewayKeys: []ed25519.PublicKey{s.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := c.Create(context.Background(), gateway.Order{Ref: "R-H", AmountFen: 1, Subject: "x", NotifyURL: "http://127.0.0.1:1/"})
	if err != nil || cr.QRContent != srv.URL+"/pay/"+cr.ProviderTxn {
		t.Fatalf("Create = %+v, %v", cr, err)
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(b, []byte(`<a href="/pay/`+cr.ProviderTxn+`">`)) || !bytes.Contains(b, []byte("R-H")) {
		t.Errorf("index:\n%s", b)
	}
}

func TestControls(t *testing.T) {
	t.Parallel()
	s := start(t, gatewaysim.Options{BaseURL: "http://192.0.2.10:8460/"})
	k := newSink(t, 204)
	c := order(t, s, "R-C", k.url)
	if c.QRContent != "http://192.0.2.10:8460/pay/"+c.ProviderTxn {
		t.Errorf("QR content %s with a base URL", c.QRContent)
	}
	for _, f := range []func(string) (gatewaysim.Order, error){s.Pay, s.Close} {
		if _, err := f("GW-NONE"); !errors.Is(err, gatewaysim.ErrNotFound) {
			t.Errorf("no such order: %v", err)
		}
	}
	o, err := s.Pay(c.ProviderTxn)
	if err != nil || o.State != "paid" || o.PaidAt.IsZero() {
		t.Fatalf("Pay = %+v, %v", o, err)
	}
	if _, err := s.Close(c.ProviderTxn); !errors.Is(err, gatewaysim.ErrNotPending) {
		t.Errorf("Close a paid order: %v", err)
	}
	if _, err := s.Pay(c.ProviderTxn); !errors.Is(err, gatewaysim.ErrNotPending) {
		t.Errorf("Pay twice: %v", err)
	}
	if byRef, ok := s.Find("R-C"); !ok || byRef.Txn != c.ProviderTxn {
		t.Errorf("Find by ref: %+v", byRef)
	}
	if os := s.Orders(); len(os) != 1 || os[0].Ref != "R-C" || os[0].Merchant != "estate-1" {
		t.Errorf("Orders %+v", os)
	}
	s.SetTwice(true)
	s.SetBadSig(true)
	s.SetLate(-time.Second)
	if st := s.Status(); !st.Twice || !st.BadSig || st.Late != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestOptions(t *testing.T) {
	pub := merchant.Public().(ed25519.PublicKey)
	for name, o := range map[string]gatewaysim.Options{
		"short key":        {Key: ed25519.PrivateKey{1, 2}},
		"merchant id":      {Merchants: map[string]ed25519.PublicKey{"estate 1": pub}},
		"merchant key":     {Merchants: map[string]ed25519.PublicKey{"estate-1": pub[:3]}},
		"base URL":         {BaseURL: "/pay"},
		"negative retry":   {RetryBase: -1},
		"negative attempt": {Attempts: -1},
	} {
		if _, err := gatewaysim.New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := gatewaysim.Start(gatewaysim.Options{Listen: "127.0.0.1:" + strconv.Itoa(-1)}); err == nil {
		t.Error("a bad address: accepted")
	}
}
