package gateway_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"onecard/gateway"
)

// verifier is a client that only verifies (it never calls the gateway).
func verifier(t *testing.T, merchant string, gw ed25519.PrivateKey, window time.Duration) *gateway.Client {
	t.Helper()
	c, err := gateway.NewClient(gateway.Config{URL: "http://127.0.0.1:9", Merchant: merchant, Key: gateway.GenerateKey(),
		GatewayKeys: []ed25519.PublicKey{gateway.GenerateKey().Public().(ed25519.PublicKey), gw.Public().(ed25519.PublicKey)}, Window: window})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signed returns the headers of body signed by key at ts.
func signed(key ed25519.PrivateKey, ts int64, body string) http.Header {
	h := http.Header{}
	nonce := gateway.NewNonce()
	gateway.Sign(key, ts, nonce, gateway.NotificationMessage(ts, nonce, []byte(body))).Set(h)
	return h
}

const goodBody = `{"merchant":"estate-1","ref":"P2601019F00A1B2C3","txn":"GW20260101ABCDEF012345","state":"paid","amount_fen":12345,"paid_at":"2026-01-01T08:00:00Z"}`

// Verify refuses every field that is malformed, even under a good
// signature, and says so with ErrMalformed.
func TestVerifyFields(t *testing.T) {
	gw := gateway.GenerateKey()
	c := verifier(t, "estate-1", gw, 0)
	now := time.Now().Unix()
	n, err := c.Verify(signed(gw, now, goodBody), []byte(goodBody))
	want := gateway.Notification{Ref: "P2601019F00A1B2C3", ProviderTxn: "GW20260101ABCDEF012345", State: "paid", AmountFen: 12345,
		PaidAt: time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)}
	if err != nil || n != want {
		t.Fatalf("good: %+v, %v", n, err)
	}
	closed := `{"merchant":"estate-1","ref":"R1","txn":"T1","state":"closed","amount_fen":1}`
	if n, err := c.Verify(signed(gw, now, closed), []byte(closed)); err != nil || n.State != "closed" || !n.PaidAt.IsZero() {
		t.Fatalf("closed: %+v, %v", n, err)
	}
	for name, body := range map[string]string{
		"amount zero":       strings.Replace(goodBody, `"amount_fen":12345`, `"amount_fen":`+"0", 1),
		"amount negative":   strings.Replace(goodBody, `"amount_fen":12345`, `"amount_fen":`+"-5", 1),
		"amount too large":  strings.Replace(goodBody, `"amount_fen":12345`, `"amount_fen":`+"100000001", 1),
		"amount a string":   strings.Replace(goodBody, `"amount_fen":12345`, `"amount_fen":`+`"12345"`, 1),
		"amount a fraction": strings.Replace(goodBody, `"amount_fen":12345`, `"amount_fen":`+"123.45", 1),
		"amount exponent":   strings.Replace(goodBody, `"amount_fen":12345`, `"amount_fen":`+"1e4", 1),
		"amount overflow":   strings.Replace(goodBody, `"amount_fen":12345`, `"amount_fen":`+"99999999999999999999", 1),
		"amount null":       strings.Replace(goodBody, `"amount_fen":12345`, `"amount_fen":`+"null", 1),
		"amount missing":    strings.Replace(goodBody, `"amount_fen":12345,`, "", 1),
		"other merchant":    strings.Replace(goodBody, "estate-1", "estate-2", 1),
		"no merchant":       strings.Replace(goodBody, `"merchant":"estate-1",`, "", 1),
		"ref empty":         strings.Replace(goodBody, "P2601019F00A1B2C3", "", 1),
		"ref too long":      strings.Replace(goodBody, "P2601019F00A1B2C3", strings.Repeat("P", 33), 1),
		"ref with a space":  strings.Replace(goodBody, "P2601019F00A1B2C3", "P26 01", 1),
		"ref not ASCII":     strings.Replace(goodBody, "P2601019F00A1B2C3", "P２６", 1),
		"txn empty":         strings.Replace(goodBody, "GW20260101ABCDEF012345", "", 1),
		"txn with a slash":  strings.Replace(goodBody, "GW20260101ABCDEF012345", "GW/1", 1),
		"state unknown":     strings.Replace(goodBody, `"paid",`, `"refunded",`, 1),
		"state pending":     strings.Replace(goodBody, `"paid",`, `"pending",`, 1),
		"paid without time": strings.Replace(goodBody, `,"paid_at":"2026-01-01T08:00:00Z"`, "", 1),
		"paid_at garbage":   strings.Replace(goodBody, "2026-01-01T08:00:00Z", "yesterday", 1),
		"paid_at year 1":    strings.Replace(goodBody, "2026-01-01T08:00:00Z", "0001-01-01T00:00:01Z", 1),
		"closed with time":  strings.Replace(goodBody, `"paid",`, `"closed",`, 1),
		"trailing data":     goodBody + "{}",
		"an array":          "[" + goodBody + "]",
		"not JSON":          "ref=P1&amount=1",
		"empty":             "",
		"null":              "null",
		"field of a type":   strings.Replace(goodBody, `"estate-1"`, `["estate-1"]`, 1),
	} {
		_, err := c.Verify(signed(gw, now, body), []byte(body))
		if !errors.Is(err, gateway.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// Verify refuses a message whose signature does not hold, before it reads
// the body.
func TestVerifySignature(t *testing.T) {
	gw := gateway.GenerateKey()
	c := verifier(t, "estate-1", gw, 0)
	now := time.Now().Unix()
	good := signed(gw, now, goodBody)
	edit := func(f func(h http.Header)) http.Header {
		h := good.Clone()
		f(h)
		return h
	}
	other := gateway.GenerateKey()
	for _, tc := range []struct {
		name string
		h    http.Header
		body string
		want error
	}{
		{"body altered", good, strings.Replace(goodBody, `"amount_fen":12345`, `"amount_fen":`+"99999", 1), gateway.ErrBadSignature},
		{"body with a space", good, goodBody + " ", gateway.ErrBadSignature},
		{"body of a bad signature, malformed too", good, "{", gateway.ErrBadSignature},
		{"timestamp altered", edit(func(h http.Header) { h.Set("Gateway-Timestamp", itoa(now+100000)) }), goodBody, gateway.ErrStale},
		{"timestamp moved a second", edit(func(h http.Header) { h.Set("Gateway-Timestamp", itoa(now-1)) }), goodBody, gateway.ErrBadSignature},
		{"nonce altered", edit(func(h http.Header) { h.Set("Gateway-Nonce", gateway.NewNonce()) }), goodBody, gateway.ErrBadSignature},
		{"signature altered", edit(func(h http.Header) {
			sig, _ := base64.StdEncoding.DecodeString(h.Get("Gateway-Signature"))
			sig[40] ^= 0x80
			h.Set("Gateway-Signature", base64.StdEncoding.EncodeToString(sig))
		}), goodBody, gateway.ErrBadSignature},
		{"signed by another key", signed(other, now, goodBody), goodBody, gateway.ErrUnknownKey},
		{"another key under the gateway's id", edit(func(h http.Header) {
			o := signed(other, now, goodBody)
			h.Set("Gateway-Timestamp", o.Get("Gateway-Timestamp"))
			h.Set("Gateway-Nonce", o.Get("Gateway-Nonce"))
			h.Set("Gateway-Signature", o.Get("Gateway-Signature"))
		}), goodBody, gateway.ErrBadSignature},
		{"old", signed(gw, now-int64(gateway.DefaultWindow/time.Second)-2, goodBody), goodBody, gateway.ErrStale},
		{"from the future", signed(gw, now+int64(gateway.DefaultWindow/time.Second)+2, goodBody), goodBody, gateway.ErrStale},
		{"no timestamp", edit(func(h http.Header) { h.Del("Gateway-Timestamp") }), goodBody, gateway.ErrMissingHeader},
		{"no nonce", edit(func(h http.Header) { h.Del("Gateway-Nonce") }), goodBody, gateway.ErrMissingHeader},
		{"no key id", edit(func(h http.Header) { h.Del("Gateway-Key-Id") }), goodBody, gateway.ErrMissingHeader},
		{"no signature", edit(func(h http.Header) { h.Del("Gateway-Signature") }), goodBody, gateway.ErrMissingHeader},
		{"no headers", http.Header{}, goodBody, gateway.ErrMissingHeader},
		{"empty signature", edit(func(h http.Header) { h.Set("Gateway-Signature", "") }), goodBody, gateway.ErrMissingHeader},
		{"two signatures", edit(func(h http.Header) { h.Add("Gateway-Signature", h.Get("Gateway-Signature")) }), goodBody, gateway.ErrMalformed},
		{"timestamp in milliseconds", edit(func(h http.Header) { h.Set("Gateway-Timestamp", itoa(now*1000)) }), goodBody, gateway.ErrMalformed},
		{"timestamp signed", edit(func(h http.Header) { h.Set("Gateway-Timestamp", "+"+itoa(now)) }), goodBody, gateway.ErrMalformed},
		{"timestamp negative", edit(func(h http.Header) { h.Set("Gateway-Timestamp", "-1") }), goodBody, gateway.ErrMalformed},
		{"nonce short", edit(func(h http.Header) { h.Set("Gateway-Nonce", "abc") }), goodBody, gateway.ErrMalformed},
		{"nonce with a newline", edit(func(h http.Header) { h.Set("Gateway-Nonce", "0123456789abcdef\n01") }), goodBody, gateway.ErrMalformed},
		{"key id not hex", edit(func(h http.Header) { h.Set("Gateway-Key-Id", "zz475aa75463474c") }), goodBody, gateway.ErrMalformed},
		{"signature short", edit(func(h http.Header) { h.Set("Gateway-Signature", "AAAA") }), goodBody, gateway.ErrMalformed},
		{"signature not base64", edit(func(h http.Header) { h.Set("Gateway-Signature", strings.Repeat("*", 88)) }), goodBody, gateway.ErrMalformed},
	} {
		_, err := c.Verify(tc.h, []byte(tc.body))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The same notification twice (a gateway's retry, or a duplicate on
	// the way) verifies both times: the receiver is idempotent.
	for i := range 2 {
		if _, err := c.Verify(good, []byte(goodBody)); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
	}
	// A window of one's own.
	tight := verifier(t, "estate-1", gw, 2*time.Second)
	if _, err := tight.Verify(signed(gw, now-5, goodBody), []byte(goodBody)); !errors.Is(err, gateway.ErrStale) {
		t.Errorf("5 s old, window 2 s: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestNewClient(t *testing.T) {
	k := gateway.GenerateKey()
	pub := []ed25519.PublicKey{k.Public().(ed25519.PublicKey)}
	for name, c := range map[string]gateway.Config{
		"no URL":          {Merchant: "m", Key: k, GatewayKeys: pub},
		"ftp":             {URL: "ftp://x", Merchant: "m", Key: k, GatewayKeys: pub},
		"query":           {URL: "http://x/?a=1", Merchant: "m", Key: k, GatewayKeys: pub},
		"no merchant":     {URL: "http://x", Key: k, GatewayKeys: pub},
		"merchant spaces": {URL: "http://x", Merchant: "m m", Key: k, GatewayKeys: pub},
		"no key":          {URL: "http://x", Merchant: "m", GatewayKeys: pub},
		"no gateway key":  {URL: "http://x", Merchant: "m", Key: k},
		"short key":       {URL: "http://x", Merchant: "m", Key: k, GatewayKeys: []ed25519.PublicKey{pub[0][:5]}},
		"negative window": {URL: "http://x", Merchant: "m", Key: k, GatewayKeys: pub, Window: -1},
	} {
		if _, err := gateway.NewClient(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
