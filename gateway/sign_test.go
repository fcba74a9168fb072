package gateway_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onecard/gateway"
)

// The worked example of docs/gateway.md, checked against an independent
// implementation (Python's cryptography package) when it was written.
const (
	vectorSeed   = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	vectorKeyID  = "56475aa75463474c"
	vectorTS     = 1767225600
	vectorNonce  = "0123456789abcdef0123456789abcdef"
	vectorBody   = `{"merchant":"onecard","ref":"P260101A1B2C3D4E5","txn":"GW2026010100000000AB12","state":"paid","amount_fen":12345,"paid_at":"2026-01-01T00:00:00Z"}`
	vectorSig    = "L1JqwXDjKnuYG/5XltNzIXbHCDhCZ2fB/dIkEahyU03cULhpw8KOZkoeHJPUMkznCSNwxnl5S9w0+vvWr30MCg=="
	vectorPubPEM = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=
-----END PUBLIC KEY-----
`
	vectorPrivPEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f
-----END PRIVATE KEY-----
`
)

func vectorKey() ed25519.PrivateKey {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func TestSignatureVector(t *testing.T) {
	k := vectorKey()
	msg := gateway.NotificationMessage(vectorTS, vectorNonce, []byte(vectorBody))
	if want := "ONECARD-GW-1 NOTIFY\n1767225600\n" + vectorNonce + "\n" + vectorBody; string(msg) != want {
		t.Fatalf("message %q\nwant %q", msg, want)
	}
	s := gateway.Sign(k, vectorTS, vectorNonce, msg)
	if s.KeyID != vectorKeyID || base64.StdEncoding.EncodeToString(s.Sig) != vectorSig {
		t.Fatalf("key id %s sig %s", s.KeyID, base64.StdEncoding.EncodeToString(s.Sig))
	}
	h := http.Header{}
	s.Set(h)
	for name, want := range map[string]string{"Gateway-Timestamp": "1767225600", "Gateway-Nonce": vectorNonce, "Gateway-Key-Id": vectorKeyID, "Gateway-Signature": vectorSig} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	back, err := gateway.ReadSignature(h)
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public().(ed25519.PublicKey)
	at := time.Unix(vectorTS, 0)
	if err := back.Check(pub, msg, at.Add(gateway.DefaultWindow), gateway.DefaultWindow); err != nil {
		t.Errorf("Check at the window's edge: %v", err)
	}
	if err := back.Check(pub, msg, at.Add(gateway.DefaultWindow+time.Second), gateway.DefaultWindow); !errors.Is(err, gateway.ErrStale) {
		t.Errorf("Check past the window: %v", err)
	}
	if err := back.Check(pub, msg, at.Add(-gateway.DefaultWindow-time.Second), gateway.DefaultWindow); !errors.Is(err, gateway.ErrStale) {
		t.Errorf("Check before the window (a clock ahead): %v", err)
	}
	// Each kind of message has its own first line: a notification's
	// signature is no request's.
	req := gateway.RequestMessage("POST", "/v1/orders", "onecard", vectorTS, vectorNonce, []byte(vectorBody))
	resp := gateway.ResponseMessage(vectorNonce, 200, vectorTS, vectorNonce, []byte(vectorBody))
	for _, m := range [][]byte{req, resp} {
		if err := back.Check(pub, m, at, gateway.DefaultWindow); !errors.Is(err, gateway.ErrBadSignature) {
			t.Errorf("notification signature over %q: %v", m[:30], err)
		}
	}
	if want := "ONECARD-GW-1 REQUEST\nPOST\n/v1/orders\nonecard\n1767225600\n" + vectorNonce + "\n" + vectorBody; string(req) != want {
		t.Errorf("request message %q", req)
	}
	if want := "ONECARD-GW-1 RESPONSE\n" + vectorNonce + "\n200\n1767225600\n" + vectorNonce + "\n" + vectorBody; string(resp) != want {
		t.Errorf("response message %q", resp)
	}
}

func TestKeys(t *testing.T) {
	k := vectorKey()
	if got := gateway.EncodePrivateKey(k); string(got) != vectorPrivPEM {
		t.Errorf("private PEM:\n%s", got)
	}
	if got := gateway.EncodePublicKey(k.Public().(ed25519.PublicKey)); string(got) != vectorPubPEM {
		t.Errorf("public PEM:\n%s", got)
	}
	dir := t.TempDir()
	priv := filepath.Join(dir, "gw.pem")
	made, created, err := gateway.LoadOrCreatePrivateKey(priv)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if st, _ := os.Stat(priv); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	again, created, err := gateway.LoadOrCreatePrivateKey(priv)
	if err != nil || created || !made.Equal(again) {
		t.Fatalf("load: %v %v", created, err)
	}
	pub, err := gateway.LoadPublicKey(priv) // the public half of a private key file
	if err != nil || !pub.Equal(made.Public()) {
		t.Fatalf("public half: %v", err)
	}
	pubFile := filepath.Join(dir, "gw.pub.pem")
	os.WriteFile(pubFile, gateway.EncodePublicKey(pub), 0o644)
	if p, err := gateway.LoadPublicKey(pubFile); err != nil || !p.Equal(pub) {
		t.Fatalf("public key file: %v", err)
	}
	if _, err := gateway.LoadPrivateKey(pubFile); err == nil {
		t.Error("a public key loaded as a private key")
	}
	os.Chmod(priv, 0o644)
	if _, err := gateway.LoadPrivateKey(priv); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a private key others can read: %v", err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if _, err := gateway.ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); err == nil || !strings.Contains(err.Error(), "want Ed25519") {
		t.Errorf("an ECDSA key: %v", err)
	}
	if _, err := gateway.ParsePublicKey([]byte("03a107bff3ce10be")); err == nil {
		t.Error("no PEM taken")
	}
	if !bytes.Equal(gateway.EncodePublicKey(pub), gateway.EncodePublicKey(made.Public().(ed25519.PublicKey))) {
		t.Error("round trip")
	}
}
