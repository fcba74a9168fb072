package gateway

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// The committed seed corpora are in testdata/fuzz; run longer with
//
//	go test ./gateway -run '^$' -fuzz FuzzVerify -fuzztime 30s
//	go test ./gateway -run '^$' -fuzz FuzzParseNotification -fuzztime 30s

const fuzzMerchant = "estate-1"

// checkNotification fails t unless n is what a valid notification gives.
func checkNotification(t *testing.T, n Notification) {
	t.Helper()
	switch {
	case !ValidRef(n.Ref) || !ValidTxn(n.ProviderTxn):
		t.Fatalf("ids accepted: %+v", n)
	case n.AmountFen <= 0 || n.AmountFen > MaxAmountFen:
		t.Fatalf("amount accepted: %+v", n)
	case n.State == StatePaid && n.PaidAt.IsZero(), n.State == StateClosed && !n.PaidAt.IsZero():
		t.Fatalf("paid_at and state disagree: %+v", n)
	case n.State != StatePaid && n.State != StateClosed:
		t.Fatalf("state accepted: %+v", n)
	case n.PaidAt.Location() != time.UTC:
		t.Fatalf("paid_at not in UTC: %+v", n)
	}
}

func FuzzParseNotification(f *testing.F) {
	f.Add([]byte(`{"merchant":"estate-1","ref":"P2601019F00A1B2C3","txn":"GW20260101ABCDEF012345","state":"paid","amount_fen":12345,"paid_at":"2026-01-01T08:00:00Z"}`))
	f.Add([]byte(`{"merchant":"estate-1","ref":"R1","txn":"T1","state":"closed","amount_fen":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := ParseNotification(body, fuzzMerchant)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		checkNotification(t, n)
		// What was read, written again, reads the same.
		b, err := json.Marshal(NotifyBody{Merchant: fuzzMerchant, Ref: n.Ref, Txn: n.ProviderTxn, State: n.State, AmountFen: n.AmountFen, PaidAt: n.PaidAt})
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseNotification(b, fuzzMerchant)
		if err != nil || again.Ref != n.Ref || again.ProviderTxn != n.ProviderTxn || again.State != n.State ||
			again.AmountFen != n.AmountFen || !again.PaidAt.Equal(n.PaidAt) {
			t.Fatalf("round trip: %+v, %v\nwant %+v\nvia %s", again, err, n, b)
		}
		// Another merchant's is refused.
		if _, err := ParseNotification(body, "estate-2"); err == nil {
			t.Fatal("taken for another merchant")
		}
	})
}

// FuzzVerify feeds Verify headers and bodies. With sign set, the body is
// signed with the gateway's key (so the fuzzer reaches the body's checks)
// and the fuzzed key id and signature are not used; age is how old the
// timestamp is, in seconds.
func FuzzVerify(f *testing.F) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	gw := ed25519.NewKeyFromSeed(seed)
	pub := gw.Public().(ed25519.PublicKey)
	c, err := NewClient(Config{URL: "http://127.0.0.1:9", Merchant: fuzzMerchant, Key: GenerateKey(), GatewayKeys: []ed25519.PublicKey{pub}})
	if err != nil {
		f.Fatal(err)
	}
	good := []byte(`{"merchant":"estate-1","ref":"P2601019F00A1B2C3","txn":"GW20260101ABCDEF012345","state":"paid","amount_fen":12345,"paid_at":"2026-01-01T08:00:00Z"}`)
	f.Add(int64(0), "0123456789abcdef0123456789abcdef", "", "", good, true)
	f.Add(int64(0), "0123456789abcdef0123456789abcdef", KeyID(pub), "AAAA", good, false)
	f.Fuzz(func(t *testing.T, age int64, nonce, keyID, sig string, body []byte, sign bool) {
		ts := time.Now().Unix() - age
		h := http.Header{}
		h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		h.Set(HeaderNonce, nonce)
		real := ed25519.Sign(gw, NotificationMessage(ts, nonce, body))
		if sign {
			keyID, sig = KeyID(pub), base64.StdEncoding.EncodeToString(real)
		}
		h.Set(HeaderKeyID, keyID)
		h.Set(HeaderSignature, sig)
		n, err := c.Verify(h, body)
		if err != nil {
			if !errors.Is(err, ErrMissingHeader) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrStale) &&
				!errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("error %v is none of ours", err)
			}
			// A signed body, fresh, with a good nonce fails only for
			// what the body says (or, at the window's edge, the time).
			fresh := age > -250 && age < 250
			if sign && fresh && ValidNonce(nonce) && len(body) <= MaxBody && !errors.Is(err, ErrMalformed) {
				t.Fatalf("signed and fresh, refused: %v", err)
			}
			return
		}
		if !sign && sig != base64.StdEncoding.EncodeToString(real) {
			t.Fatalf("a signature not ours verified: %q", sig)
		}
		if !ValidNonce(nonce) || age > int64(DefaultWindow/time.Second)+1 || age < -int64(DefaultWindow/time.Second)-1 {
			t.Fatalf("accepted nonce %q age %d", nonce, age)
		}
		checkNotification(t, n)
		if p, err := ParseNotification(body, fuzzMerchant); err != nil || p != n {
			t.Fatalf("Verify %+v, ParseNotification %+v %v", n, p, err)
		}
		// Any change to the body breaks the signature.
		altered := append([]byte{' '}, body...)
		if _, err := c.Verify(h, altered); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("altered body: %v", err)
		}
	})
}
