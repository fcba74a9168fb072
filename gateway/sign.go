package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The headers of a signed message (docs/gateway.md). Requests also carry
// HeaderMerchant.
const (
	HeaderTimestamp = "Gateway-Timestamp" // Unix seconds, decimal
	HeaderNonce     = "Gateway-Nonce"     // 16 to 64 letters, digits, '-' or '_'
	HeaderKeyID     = "Gateway-Key-Id"    // KeyID of the signing key
	HeaderSignature = "Gateway-Signature" // Ed25519 signature, standard base64
	HeaderMerchant  = "Gateway-Merchant"  // requests: who signs
)

// DefaultWindow is how far a message's timestamp may be from the
// receiver's clock, either way.
const DefaultWindow = 5 * time.Minute

// The first line of each kind of signed message: a signature made for one
// kind never verifies as another.
const (
	tagRequest      = "ONECARD-GW-1 REQUEST"
	tagResponse     = "ONECARD-GW-1 RESPONSE"
	tagNotification = "ONECARD-GW-1 NOTIFY"
)

// RequestMessage is what a request's signature covers: the method, the
// request URI (path and query, as sent), the merchant, the timestamp, the
// nonce and the body.
func RequestMessage(method, requestURI, merchant string, ts int64, nonce string, body []byte) []byte {
	return message(body, tagRequest, method, requestURI, merchant, strconv.FormatInt(ts, 10), nonce)
}

// ResponseMessage is what a response's signature covers: the request's
// nonce (so an old answer cannot stand for a new question), the HTTP
// status, the timestamp, the nonce and the body.
func ResponseMessage(requestNonce string, status int, ts int64, nonce string, body []byte) []byte {
	return message(body, tagResponse, requestNonce, strconv.Itoa(status), strconv.FormatInt(ts, 10), nonce)
}

// NotificationMessage is what a notification's signature covers: the
// timestamp, the nonce and the body. Not the URL: a proxy in front of
// onecard may rewrite it.
func NotificationMessage(ts int64, nonce string, body []byte) []byte {
	return message(body, tagNotification, strconv.FormatInt(ts, 10), nonce)
}

// message joins the lines with "\n", then a "\n" and the body. No line can
// hold a "\n" (each is checked before), so the split is unambiguous.
func message(body []byte, lines ...string) []byte {
	n := len(body)
	for _, l := range lines {
		n += len(l) + 1
	}
	b := make([]byte, 0, n)
	for _, l := range lines {
		b = append(b, l...)
		b = append(b, '\n')
	}
	return append(b, body...)
}

// KeyID names a public key in HeaderKeyID: the first 8 bytes of its
// SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// NewNonce returns a fresh random nonce (32 hex digits).
func NewNonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Signature is a signed message's headers.
type Signature struct {
	Timestamp int64
	Nonce     string
	KeyID     string
	Sig       []byte
}

// Sign signs msg (made with the timestamp and nonce given) with key.
func Sign(key ed25519.PrivateKey, ts int64, nonce string, msg []byte) Signature {
	return Signature{
		Timestamp: ts,
		Nonce:     nonce,
		KeyID:     KeyID(key.Public().(ed25519.PublicKey)),
		Sig:       ed25519.Sign(key, msg),
	}
}

// Set writes the signature's headers into h.
func (s Signature) Set(h http.Header) {
	h.Set(HeaderTimestamp, strconv.FormatInt(s.Timestamp, 10))
	h.Set(HeaderNonce, s.Nonce)
	h.Set(HeaderKeyID, s.KeyID)
	h.Set(HeaderSignature, base64.StdEncoding.EncodeToString(s.Sig))
}

// ReadSignature reads a signature's headers from h: each must be there,
// once, and well formed.
func ReadSignature(h http.Header) (Signature, error) {
	var s Signature
	get := func(name string) (string, error) {
		v := h.Values(name)
		switch {
		case len(v) == 0 || v[0] == "":
			return "", fmt.Errorf("%w: %s", ErrMissingHeader, name)
		case len(v) > 1:
			return "", fmt.Errorf("%w: %s given %d times", ErrMalformed, name, len(v))
		}
		return v[0], nil
	}
	ts, err := get(HeaderTimestamp)
	if err != nil {
		return s, err
	}
	if s.Nonce, err = get(HeaderNonce); err != nil {
		return s, err
	}
	if s.KeyID, err = get(HeaderKeyID); err != nil {
		return s, err
	}
	sig, err := get(HeaderSignature)
	if err != nil {
		return s, err
	}
	if s.Timestamp, err = ParseTimestamp(ts); err != nil {
		return s, err
	}
	if !ValidNonce(s.Nonce) {
		return s, fmt.Errorf("%w: %s %q", ErrMalformed, HeaderNonce, s.Nonce)
	}
	if !validKeyID(s.KeyID) {
		return s, fmt.Errorf("%w: %s %q", ErrMalformed, HeaderKeyID, s.KeyID)
	}
	if len(sig) != base64.StdEncoding.EncodedLen(ed25519.SignatureSize) {
		return s, fmt.Errorf("%w: %s is not %d bytes in base64", ErrMalformed, HeaderSignature, ed25519.SignatureSize)
	}
	if s.Sig, err = base64.StdEncoding.Strict().DecodeString(sig); err != nil || len(s.Sig) != ed25519.SignatureSize {
		return s, fmt.Errorf("%w: %s is not %d bytes in base64", ErrMalformed, HeaderSignature, ed25519.SignatureSize)
	}
	return s, nil
}

// ParseTimestamp parses Unix seconds in decimal: digits only, at most 11.
func ParseTimestamp(s string) (int64, error) {
	if len(s) == 0 || len(s) > 11 {
		return 0, fmt.Errorf("%w: %s %q", ErrMalformed, HeaderTimestamp, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %s %q", ErrMalformed, HeaderTimestamp, s)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// ValidNonce reports whether n is a well-formed nonce.
func ValidNonce(n string) bool { return len(n) >= 16 && validID(n, 64) }

func validKeyID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// CheckTime refuses a timestamp further than window from now, either way.
func CheckTime(ts int64, now time.Time, window time.Duration) error {
	d := now.Sub(time.Unix(ts, 0))
	if d > window || d < -window {
		return fmt.Errorf("%w: signed at %s, %v from now (window ±%v)", ErrStale,
			time.Unix(ts, 0).UTC().Format(time.RFC3339), d.Round(time.Second), window)
	}
	return nil
}

// Check verifies s over msg with pub, and its timestamp against now.
func (s Signature) Check(pub ed25519.PublicKey, msg []byte, now time.Time, window time.Duration) error {
	if s.KeyID != KeyID(pub) {
		return fmt.Errorf("%w: key %s", ErrUnknownKey, s.KeyID)
	}
	if err := CheckTime(s.Timestamp, now, window); err != nil {
		return err
	}
	if !ed25519.Verify(pub, msg, s.Sig) {
		return ErrBadSignature
	}
	return nil
}
