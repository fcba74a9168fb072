package passcode

import (
	"crypto/ed25519"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

const (
	// Prefix starts every pass code. Together with the base32 body it keeps
	// the text inside the QR alphanumeric set, so the code is a small QR.
	Prefix = "OCP:"
	// Version is the payload format that Sign writes and Parse reads.
	Version = 1
	// MaxPassLen and MaxGateLen bound the pass number and the gate, in bytes.
	MaxPassLen = 24
	MaxGateLen = 16
	// MaxValidity is the longest validity window a code can carry.
	MaxValidity = math.MaxUint16 * time.Minute
	// DefaultSkew is the clock drift Verify tolerates at either end of the
	// validity window: terminals run offline on their own clocks.
	DefaultSkew = 5 * time.Minute
	// SigContext is signed before the payload, so a pass key's signature is
	// never valid as anything but a pass of this format.
	SigContext = "onecard/pass/v1"
)

// Sizes of the v1 layout (docs/passcode.md).
const (
	headerLen = 1 + 2 + 4 + 2 // version, key id, not before, validity
	fixedLen  = headerLen + 1 + 1 + ed25519.SignatureSize
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

var (
	// ErrMalformed: not a pass code, or a damaged one (bad characters,
	// truncated, bytes left over, fields out of range).
	ErrMalformed = errors.New("passcode: not a valid pass code")
	// ErrVersion: a pass code of a format this build does not know.
	ErrVersion = errors.New("passcode: unknown pass code version")
	// ErrUnknownKey: signed with a key the keyring lacks: another estate's
	// pass, or a key retired or not yet distributed.
	ErrUnknownKey = errors.New("passcode: signed with an unknown key")
	// ErrBadSignature: the signature does not match: forged or altered.
	ErrBadSignature = errors.New("passcode: bad signature")
	// ErrNotYetValid: genuine, but its validity window has not begun.
	ErrNotYetValid = errors.New("passcode: pass not yet valid")
	// ErrExpired: genuine, but its validity window is over.
	ErrExpired = errors.New("passcode: pass expired")
	// ErrWrongGate: genuine and valid now, but for another gate.
	ErrWrongGate = errors.New("passcode: wrong gate")
	// ErrInvalid: Sign was given claims a code cannot carry.
	ErrInvalid = errors.New("passcode: invalid claims")
)

// Claims is what a pass code says.
type Claims struct {
	Pass string // the pass number, e.g. "2026-000123"
	Gate string // the gate the goods leave by, e.g. "south"
	// The pass is valid from NotBefore up to, not including, NotAfter. Both
	// are whole minutes; Parse returns them in UTC.
	NotBefore, NotAfter time.Time
	// KeyID names the key that signed the code. Parse sets it; Sign takes
	// it from the private key and ignores this field.
	KeyID KeyID
}

// Sign returns the pass code of c signed with priv: Prefix and the base32
// text of the payload and its signature, upper case, no padding.
func Sign(priv ed25519.PrivateKey, c Claims) (string, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("passcode: private key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	if err := c.validate(); err != nil {
		return "", err
	}
	id := KeyIDOf(priv.Public().(ed25519.PublicKey))
	b := make([]byte, headerLen, fixedLen+len(c.Pass)+len(c.Gate))
	b[0] = Version
	binary.BigEndian.PutUint16(b[1:], uint16(id))
	binary.BigEndian.PutUint32(b[3:], uint32(c.NotBefore.Unix()/60))
	binary.BigEndian.PutUint16(b[7:], uint16(c.NotAfter.Sub(c.NotBefore)/time.Minute))
	b = append(b, byte(len(c.Pass)))
	b = append(b, c.Pass...)
	b = append(b, byte(len(c.Gate)))
	b = append(b, c.Gate...)
	b = append(b, ed25519.Sign(priv, signedMessage(b))...)
	return Prefix + b32.EncodeToString(b), nil
}

func (c Claims) validate() error {
	if err := checkID("pass number", c.Pass, MaxPassLen); err != nil {
		return err
	}
	if err := checkID("gate", c.Gate, MaxGateLen); err != nil {
		return err
	}
	nb, na := c.NotBefore, c.NotAfter
	switch {
	case !wholeMinute(nb) || !wholeMinute(na):
		return fmt.Errorf("%w: validity %v–%v is not in whole minutes", ErrInvalid, nb, na)
	case nb.Unix() < 0 || nb.Unix()/60 > math.MaxUint32:
		return fmt.Errorf("%w: valid from %v: out of range", ErrInvalid, nb)
	case !na.After(nb):
		return fmt.Errorf("%w: valid until %v is not after valid from %v", ErrInvalid, na, nb)
	case na.Sub(nb) > MaxValidity:
		return fmt.Errorf("%w: validity %v longer than %v", ErrInvalid, na.Sub(nb), MaxValidity)
	}
	return nil
}

func wholeMinute(t time.Time) bool { return t.Nanosecond() == 0 && t.Unix()%60 == 0 }

// checkID refuses an empty or too long id, or one with a byte outside
// printable ASCII without space (0x21–0x7E): ids are printed on passes and
// shown on guard screens.
func checkID(what, s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%w: %s %q: want 1 to %d characters", ErrInvalid, what, s, max)
	}
	if !printable(s) {
		return fmt.Errorf("%w: %s %q: only printable ASCII without spaces", ErrInvalid, what, s)
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func signedMessage(payload []byte) []byte {
	return append([]byte(SigContext), payload...)
}

// LooksLikeCode reports whether s, as a scanner delivered it, is meant as a
// pass code rather than a pass number typed by hand: whether it starts with
// Prefix in either case. It does not say the code is good; a damaged scan
// should still reach Parse, to be refused with a reason.
func LooksLikeCode(s string) bool {
	s = trim(s)
	return len(s) >= len(Prefix) && strings.EqualFold(s[:len(Prefix)], Prefix)
}

// trim drops what keyboard-wedge scanners add around a code.
func trim(s string) string { return strings.Trim(s, " \t\r\n\v\f") }

// Parse decodes a pass code and checks its signature against keys, and
// nothing else: not its validity window, not its gate. The text may be in
// either case and carry leading or trailing whitespace, as keyboard-wedge
// scanners deliver it. An error wraps ErrMalformed, ErrVersion,
// ErrUnknownKey or ErrBadSignature; Claims are returned only with a nil
// error.
func Parse(text string, keys *Keyring) (Claims, error) {
	b, err := decode(text)
	if err != nil {
		return Claims{}, err
	}
	if b[0] != Version {
		return Claims{}, fmt.Errorf("%w: version %d, want %d", ErrVersion, b[0], Version)
	}
	if len(b) < fixedLen {
		return Claims{}, fmt.Errorf("%w: truncated (%d bytes)", ErrMalformed, len(b))
	}
	p := int(b[headerLen])
	if len(b) < fixedLen+p {
		return Claims{}, fmt.Errorf("%w: truncated (%d bytes, pass number of %d)", ErrMalformed, len(b), p)
	}
	g := int(b[headerLen+1+p])
	switch n := fixedLen + p + g; {
	case len(b) < n:
		return Claims{}, fmt.Errorf("%w: truncated (%d bytes, want %d)", ErrMalformed, len(b), n)
	case len(b) > n:
		return Claims{}, fmt.Errorf("%w: %d bytes left over", ErrMalformed, len(b)-n)
	}
	id := KeyID(binary.BigEndian.Uint16(b[1:]))
	cands := keys.lookup(id)
	if len(cands) == 0 {
		return Claims{}, fmt.Errorf("%w: key %v", ErrUnknownKey, id)
	}
	payload, sig := b[:len(b)-ed25519.SignatureSize], b[len(b)-ed25519.SignatureSize:]
	msg := signedMessage(payload)
	ok := false
	for _, k := range cands { // two keys may share an id
		if ed25519.Verify(k, msg, sig) {
			ok = true
			break
		}
	}
	if !ok {
		return Claims{}, fmt.Errorf("%w: forged or altered (key %v)", ErrBadSignature, id)
	}
	// Genuine from here: what follows only fails for a code signed by some
	// other program holding our key.
	nb := int64(binary.BigEndian.Uint32(b[3:]))
	validity := int64(binary.BigEndian.Uint16(b[7:]))
	c := Claims{
		Pass:      string(b[headerLen+1 : headerLen+1+p]),
		Gate:      string(b[headerLen+2+p : headerLen+2+p+g]),
		NotBefore: time.Unix(nb*60, 0).UTC(),
		NotAfter:  time.Unix((nb+validity)*60, 0).UTC(),
		KeyID:     id,
	}
	if err := c.validate(); err != nil {
		return Claims{}, fmt.Errorf("%w: signed, but %v", ErrMalformed, err)
	}
	return c, nil
}

// decode returns the bytes of a pass code's text: trimmed, Prefix in either
// case, then canonical base32 in either case. Non-canonical text (non-zero
// unused bits in the last character) is refused, so no two upper-case texts
// carry the same bytes.
func decode(text string) ([]byte, error) {
	s := trim(text)
	if !LooksLikeCode(s) {
		return nil, fmt.Errorf("%w: no %q prefix", ErrMalformed, Prefix)
	}
	body := []byte(s[len(Prefix):])
	for i, c := range body {
		switch {
		case 'a' <= c && c <= 'z':
			body[i] = c - 'a' + 'A'
		case 'A' <= c && c <= 'Z', '2' <= c && c <= '7':
		default:
			return nil, fmt.Errorf("%w: character %q at %d", ErrMalformed, c, len(Prefix)+i)
		}
	}
	b, err := b32.DecodeString(string(body))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%w: truncated or damaged base32", ErrMalformed)
	}
	if b32.EncodeToString(b) != string(body) {
		return nil, fmt.Errorf("%w: damaged base32 (non-canonical end)", ErrMalformed)
	}
	return b, nil
}

// Check says whether the pass is valid at now, allowing skew of clock
// drift at either end: from NotBefore-skew up to, not including,
// NotAfter+skew. It returns nil, or an error wrapping ErrNotYetValid or
// ErrExpired. A negative skew counts as none.
func (c Claims) Check(now time.Time, skew time.Duration) error {
	skew = max(skew, 0)
	switch {
	case now.Before(c.NotBefore.Add(-skew)):
		return fmt.Errorf("%w: valid from %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	case !now.Before(c.NotAfter.Add(skew)):
		return fmt.Errorf("%w: valid until %s", ErrExpired, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// CheckGate returns nil if the pass is for gate, or an error wrapping
// ErrWrongGate that names the pass's gate. Gates compare exactly.
func (c Claims) CheckGate(gate string) error {
	if c.Gate != gate {
		return fmt.Errorf("%w: pass is for gate %q, not %q", ErrWrongGate, c.Gate, gate)
	}
	return nil
}

// Verify is what a gate terminal does with a scanned code: Parse it, then
// Check it at now with DefaultSkew, then CheckGate. When the code is genuine
// but refused here and now (ErrNotYetValid, ErrExpired, ErrWrongGate), the
// claims come back with the error, so the screen can say which pass it was
// and when or where it is good.
func Verify(text string, keys *Keyring, gate string, now time.Time) (Claims, error) {
	c, err := Parse(text, keys)
	if err != nil {
		return Claims{}, err
	}
	if err := c.Check(now, DefaultSkew); err != nil {
		return c, err
	}
	return c, c.CheckGate(gate)
}

// CodeLen is the length of the pass code of a pass number of passLen bytes
// and a gate of gateLen bytes.
func CodeLen(passLen, gateLen int) int {
	return len(Prefix) + b32.EncodedLen(fixedLen+passLen+gateLen)
}
