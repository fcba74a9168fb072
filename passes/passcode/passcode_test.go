package passcode_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	qrcode "github.com/skip2/go-qrcode"

	"onecard/passes/passcode"
)

// The golden vector of docs/passcode.md: key seed 00 01 … 1f, the claims of
// typicalClaims.
const goldenCode = "OCP:AFLEOAOECSAALIALGIYDENRNGAYDAMJSGMCXG33VORUAK2QEZUSMTDT4V6APU7URJYGXOFRYKAWBGNZESLHMFOI5PR6W2CYKK5BUZYG3DIVUQ3SEHTQNPKMW5XXXH4ZPTYSALTW26M33R5NLAY"

var (
	cst = time.FixedZone("CST", 8*3600) // the site's zone, Asia/Shanghai

	siteKey  = keyFromSeed(seq32())
	otherKey = keyFromSeed(sha256.Sum256([]byte("another estate")))

	typicalClaims = passcode.Claims{
		Pass:      "2026-000123",
		Gate:      "south",
		NotBefore: time.Date(2026, 5, 2, 0, 0, 0, 0, cst),
		NotAfter:  time.Date(2026, 5, 3, 0, 0, 0, 0, cst),
	}
)

func seq32() (s [32]byte) {
	for i := range s {
		s[i] = byte(i)
	}
	return s
}

func keyFromSeed(seed [32]byte) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(seed[:]) }

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func ring(t testing.TB, keys ...ed25519.PrivateKey) *passcode.Keyring {
	t.Helper()
	var pubs []ed25519.PublicKey
	for _, k := range keys {
		pubs = append(pubs, pub(k))
	}
	r, err := passcode.NewKeyring(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sign(t testing.TB, k ed25519.PrivateKey, c passcode.Claims) string {
	t.Helper()
	code, err := passcode.Sign(k, c)
	if err != nil {
		t.Fatalf("Sign(%+v): %v", c, err)
	}
	return code
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// codeBytes returns the bytes a pass code's text carries.
func codeBytes(t *testing.T, code string) []byte {
	t.Helper()
	b, err := b32.DecodeString(strings.TrimPrefix(code, passcode.Prefix))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func textOf(b []byte) string { return passcode.Prefix + b32.EncodeToString(b) }

func sameClaims(a, b passcode.Claims) bool {
	return a.Pass == b.Pass && a.Gate == b.Gate && a.KeyID == b.KeyID &&
		a.NotBefore.Equal(b.NotBefore) && a.NotAfter.Equal(b.NotAfter)
}

// parseErrors are the refusals of Parse; every one must wrap exactly one.
var parseErrors = []error{passcode.ErrMalformed, passcode.ErrVersion, passcode.ErrUnknownKey, passcode.ErrBadSignature}

// checkRefusal fails t unless err wraps exactly one of parseErrors.
func checkRefusal(t testing.TB, err error, what string) {
	t.Helper()
	n := 0
	for _, e := range parseErrors {
		if errors.Is(err, e) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%s: error %v: wraps %d of the parse sentinels, want 1", what, err, n)
	}
}

func TestRoundTrip(t *testing.T) {
	r := ring(t, siteKey)
	minute := time.Date(2026, 5, 2, 9, 30, 0, 0, time.UTC)
	for _, c := range []passcode.Claims{
		typicalClaims,
		{Pass: "1", Gate: "g", NotBefore: minute, NotAfter: minute.Add(time.Minute)},
		{Pass: strings.Repeat("9", passcode.MaxPassLen), Gate: strings.Repeat("~", passcode.MaxGateLen),
			NotBefore: minute, NotAfter: minute.Add(passcode.MaxValidity)},
		{Pass: "A!\"#$%&'()*+,-./:", Gate: "north-2", NotBefore: time.Unix(0, 0), NotAfter: time.Unix(60, 0)},
		{Pass: "P", Gate: "G", NotBefore: time.Unix(60*(1<<32-1), 0), NotAfter: time.Unix(60*(1<<32-1), 0).Add(passcode.MaxValidity)},
	} {
		code := sign(t, siteKey, c)
		if n := passcode.CodeLen(len(c.Pass), len(c.Gate)); len(code) != n {
			t.Errorf("%q: %d characters, CodeLen says %d", code, len(code), n)
		}
		got, err := passcode.Parse(code, r)
		if err != nil {
			t.Fatalf("Parse(Sign(%+v)): %v", c, err)
		}
		want := c
		want.KeyID = passcode.KeyIDOf(pub(siteKey))
		if !sameClaims(got, want) || got.NotBefore.Location() != time.UTC || got.NotAfter.Location() != time.UTC {
			t.Errorf("Parse(Sign(%+v)) = %+v", want, got)
		}
	}
}

// Sign is deterministic (Ed25519 is), so a fixed key and claims give a fixed
// code: the test vector for other implementations, printed in the docs.
func TestGoldenVector(t *testing.T) {
	code := sign(t, siteKey, typicalClaims)
	if code != goldenCode {
		t.Fatalf("code changed:\n got %s\nwant %s", code, goldenCode)
	}
	doc, err := os.ReadFile("../../docs/passcode.md")
	if err != nil {
		t.Fatal(err)
	}
	b := codeBytes(t, code)
	for _, s := range []string{goldenCode, fmt.Sprintf("% X", b[:len(b)-64]), base64.StdEncoding.EncodeToString(pub(siteKey)),
		passcode.KeyIDOf(pub(siteKey)).String()} {
		if !strings.Contains(string(doc), s) {
			t.Errorf("docs/passcode.md lacks %s", s)
		}
	}
}

func TestSignRefuses(t *testing.T) {
	ok := typicalClaims
	with := func(f func(*passcode.Claims)) passcode.Claims { c := ok; f(&c); return c }
	for name, c := range map[string]passcode.Claims{
		"no pass":            with(func(c *passcode.Claims) { c.Pass = "" }),
		"long pass":          with(func(c *passcode.Claims) { c.Pass = strings.Repeat("1", passcode.MaxPassLen+1) }),
		"space in pass":      with(func(c *passcode.Claims) { c.Pass = "2026 000123" }),
		"non-ASCII pass":     with(func(c *passcode.Claims) { c.Pass = "２０２６" }),
		"control in pass":    with(func(c *passcode.Claims) { c.Pass = "2026\n" }),
		"DEL in pass":        with(func(c *passcode.Claims) { c.Pass = "2026\x7f" }),
		"no gate":            with(func(c *passcode.Claims) { c.Gate = "" }),
		"long gate":          with(func(c *passcode.Claims) { c.Gate = strings.Repeat("g", passcode.MaxGateLen+1) }),
		"Chinese gate":       with(func(c *passcode.Claims) { c.Gate = "南门" }),
		"empty window":       with(func(c *passcode.Claims) { c.NotAfter = c.NotBefore }),
		"reversed window":    with(func(c *passcode.Claims) { c.NotAfter = c.NotBefore.Add(-time.Minute) }),
		"seconds":            with(func(c *passcode.Claims) { c.NotBefore = c.NotBefore.Add(time.Second) }),
		"nanoseconds":        with(func(c *passcode.Claims) { c.NotAfter = c.NotAfter.Add(1) }),
		"before 1970":        with(func(c *passcode.Claims) { c.NotBefore = time.Unix(-60, 0) }),
		"after uint32 range": with(func(c *passcode.Claims) { c.NotBefore = time.Unix(60<<32, 0); c.NotAfter = c.NotBefore.Add(time.Hour) }),
		"window too long":    with(func(c *passcode.Claims) { c.NotAfter = c.NotBefore.Add(passcode.MaxValidity + time.Minute) }),
		"zero times":         with(func(c *passcode.Claims) { c.NotBefore, c.NotAfter = time.Time{}, time.Time{} }),
	} {
		if code, err := passcode.Sign(siteKey, c); !errors.Is(err, passcode.ErrInvalid) {
			t.Errorf("%s: Sign = %q, %v; want ErrInvalid", name, code, err)
		}
	}
	if _, err := passcode.Sign(siteKey[:32], ok); err == nil {
		t.Error("Sign with a 32-byte private key: no error")
	}
}

// Every single-bit change of the bytes is refused, for the reason its place
// gives: the version byte, the key id, or else forged or damaged.
func TestEveryBitFlipRefused(t *testing.T) {
	r := ring(t, siteKey)
	code := sign(t, siteKey, typicalClaims)
	b := codeBytes(t, code)
	for i := range b {
		for bit := range 8 {
			m := bytes.Clone(b)
			m[i] ^= 1 << bit
			c, err := passcode.Parse(textOf(m), r)
			if err == nil {
				t.Fatalf("byte %d bit %d flipped: accepted as %+v", i, bit, c)
			}
			checkRefusal(t, err, fmt.Sprintf("byte %d bit %d", i, bit))
			var want []error
			switch {
			case i == 0:
				want = []error{passcode.ErrVersion}
			case i <= 2:
				want = []error{passcode.ErrUnknownKey}
			default:
				want = []error{passcode.ErrBadSignature, passcode.ErrMalformed}
			}
			if !errors.Is(err, want[0]) && (len(want) == 1 || !errors.Is(err, want[1])) {
				t.Errorf("byte %d bit %d flipped: %v, want %v", i, bit, err, want)
			}
		}
	}
}

// Every change of one character of the text to another (not the same
// letter in the other case) is refused.
func TestEveryCharacterChangeRefused(t *testing.T) {
	r := ring(t, siteKey)
	code := sign(t, siteKey, typicalClaims)
	// Lower case letters read as upper case: a few stand for all of them.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567aoz01890:-. $%*+/\r\x00\xff"
	for i := range len(code) {
		for _, ch := range []byte(alphabet) {
			if strings.EqualFold(string(ch), code[i:i+1]) {
				continue
			}
			m := code[:i] + string(ch) + code[i+1:]
			if c, err := passcode.Parse(m, r); err == nil {
				t.Fatalf("%q at %d: %q accepted as %+v", ch, i, m, c)
			} else {
				checkRefusal(t, err, fmt.Sprintf("%q at %d", ch, i))
			}
		}
	}
}

// Cut anywhere, in the text or in the bytes, a code is refused as
// malformed; with anything added after it, too.
func TestTruncatedOrExtendedRefused(t *testing.T) {
	r := ring(t, siteKey)
	code := sign(t, siteKey, typicalClaims)
	for n := range len(code) {
		if _, err := passcode.Parse(code[:n], r); !errors.Is(err, passcode.ErrMalformed) {
			t.Errorf("text cut to %d characters: %v", n, err)
		}
	}
	b := codeBytes(t, code)
	for n := range len(b) {
		if _, err := passcode.Parse(textOf(b[:n]), r); !errors.Is(err, passcode.ErrMalformed) {
			t.Errorf("bytes cut to %d: %v", n, err)
		}
	}
	for _, extra := range [][]byte{{0}, {0xff}, b[len(b)-64:]} {
		if _, err := passcode.Parse(textOf(append(bytes.Clone(b), extra...)), r); !errors.Is(err, passcode.ErrMalformed) {
			t.Errorf("%d bytes added: %v", len(extra), err)
		}
	}
	for _, extra := range []string{"A", "AA", "AAAAAAAA", "=", "===="} {
		if _, err := passcode.Parse(code+extra, r); !errors.Is(err, passcode.ErrMalformed) {
			t.Errorf("%q added: %v", extra, err)
		}
	}
}

func TestVersion(t *testing.T) {
	r := ring(t, siteKey)
	b := codeBytes(t, sign(t, siteKey, typicalClaims))
	for _, v := range []byte{0, 2, 0xff} {
		m := bytes.Clone(b)
		m[0] = v
		if _, err := passcode.Parse(textOf(m), r); !errors.Is(err, passcode.ErrVersion) {
			t.Errorf("version %d: %v", v, err)
		}
	}
}

func TestKeys(t *testing.T) {
	code := sign(t, siteKey, typicalClaims)
	if _, err := passcode.Parse(code, ring(t, otherKey)); !errors.Is(err, passcode.ErrUnknownKey) {
		t.Errorf("other estate's keyring: %v", err)
	}
	for _, r := range []*passcode.Keyring{nil, {}} {
		if _, err := passcode.Parse(code, r); !errors.Is(err, passcode.ErrUnknownKey) {
			t.Errorf("empty keyring: %v", err)
		}
	}
	// Rotation: a terminal holding the old and the new key takes both.
	both := ring(t, siteKey, otherKey)
	for _, k := range []ed25519.PrivateKey{siteKey, otherKey} {
		c, err := passcode.Parse(sign(t, k, typicalClaims), both)
		if err != nil || c.KeyID != passcode.KeyIDOf(pub(k)) {
			t.Errorf("rotation: %+v, %v", c, err)
		}
	}
	// Valid signature by a key the estate does not hold, sharing its id.
	a, b := collidingKeys(t)
	if _, err := passcode.Parse(sign(t, b, typicalClaims), ring(t, a)); !errors.Is(err, passcode.ErrBadSignature) {
		t.Errorf("key with a colliding id: %v", err)
	}
	ab := ring(t, a, b)
	if ab.Len() != 2 {
		t.Errorf("keyring of two colliding keys: Len %d", ab.Len())
	}
	for _, k := range []ed25519.PrivateKey{a, b} {
		if _, err := passcode.Parse(sign(t, k, typicalClaims), ab); err != nil {
			t.Errorf("keys sharing id %v: %v", passcode.KeyIDOf(pub(k)), err)
		}
	}
	if _, err := ab.Add(pub(a)); err != nil || ab.Len() != 2 {
		t.Errorf("adding a key again: %v, Len %d", err, ab.Len())
	}
	if _, err := passcode.NewKeyring(pub(a)[:31]); err == nil {
		t.Error("31-byte public key accepted")
	}
	k1, err1 := passcode.NewKey()
	k2, err2 := passcode.NewKey()
	if err1 != nil || err2 != nil || len(k1) != ed25519.PrivateKeySize || k1.Equal(k2) {
		t.Errorf("NewKey: %v %v", err1, err2)
	}
	if got := passcode.KeyIDOf(pub(siteKey)).String(); len(got) != 4 {
		t.Errorf("KeyID.String() = %q", got)
	}
}

// collidingKeys returns two keys whose ids are equal (a birthday search
// among keys from counter seeds: some hundreds of keys).
func collidingKeys(t *testing.T) (a, b ed25519.PrivateKey) {
	seen := map[passcode.KeyID]ed25519.PrivateKey{}
	for i := range 100000 {
		k := keyFromSeed(sha256.Sum256(fmt.Appendf(nil, "key %d", i)))
		id := passcode.KeyIDOf(pub(k))
		if o, ok := seen[id]; ok {
			return o, k
		}
		seen[id] = k
	}
	t.Fatal("no colliding ids")
	return nil, nil
}

func TestCheckWindow(t *testing.T) {
	c := typicalClaims
	nb, na := c.NotBefore, c.NotAfter
	const skew = 2 * time.Minute
	for _, tc := range []struct {
		now  time.Time
		skew time.Duration
		want error
	}{
		{nb.Add(-1), 0, passcode.ErrNotYetValid},
		{nb, 0, nil},
		{na.Add(-1), 0, nil},
		{na, 0, passcode.ErrExpired},
		{nb.Add(-skew - 1), skew, passcode.ErrNotYetValid},
		{nb.Add(-skew), skew, nil},
		{na.Add(skew - 1), skew, nil},
		{na.Add(skew), skew, passcode.ErrExpired},
		{nb.Add(-1), -skew, passcode.ErrNotYetValid}, // a negative skew is none
		{na, -skew, passcode.ErrExpired},
		{time.Unix(0, 0), skew, passcode.ErrNotYetValid}, // a terminal whose clock was never set
	} {
		err := c.Check(tc.now, tc.skew)
		if (tc.want == nil) != (err == nil) || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Check(%v, %v) = %v, want %v", tc.now, tc.skew, err, tc.want)
		}
	}
}

func TestVerify(t *testing.T) {
	r := ring(t, siteKey)
	code := sign(t, siteKey, typicalClaims)
	nb, na := typicalClaims.NotBefore, typicalClaims.NotAfter
	for _, tc := range []struct {
		gate string
		now  time.Time
		want error
	}{
		{"south", nb.Add(10 * time.Hour), nil},
		{"south", nb.Add(-passcode.DefaultSkew), nil},
		{"south", nb.Add(-passcode.DefaultSkew - time.Second), passcode.ErrNotYetValid},
		{"south", na.Add(passcode.DefaultSkew - time.Second), nil},
		{"south", na.Add(passcode.DefaultSkew), passcode.ErrExpired},
		{"north", nb.Add(time.Hour), passcode.ErrWrongGate},
		{"South", nb.Add(time.Hour), passcode.ErrWrongGate},
		{"", nb.Add(time.Hour), passcode.ErrWrongGate},
		{"north", na.Add(time.Hour), passcode.ErrExpired}, // the window is told first
	} {
		c, err := passcode.Verify(code, r, tc.gate, tc.now)
		if (tc.want == nil) != (err == nil) || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Verify at %q, %v = %v, want %v", tc.gate, tc.now, err, tc.want)
		}
		// Genuine codes come back with their claims, for the guard's screen.
		if c.Pass != typicalClaims.Pass {
			t.Errorf("Verify at %q, %v: claims %+v", tc.gate, tc.now, c)
		}
		if errors.Is(err, passcode.ErrWrongGate) && !strings.Contains(err.Error(), `"south"`) {
			t.Errorf("wrong gate error does not name the pass's gate: %v", err)
		}
	}
	m := []byte(code)
	m[20] ^= 1
	if c, err := passcode.Verify(string(m), r, "south", nb.Add(time.Hour)); !errors.Is(err, passcode.ErrBadSignature) || c.Pass != "" {
		t.Errorf("altered code: %+v, %v", c, err)
	}
}

// Keyboard-wedge scanners deliver codes in either case, with line ends.
func TestScannerNoise(t *testing.T) {
	r := ring(t, siteKey)
	code := sign(t, siteKey, typicalClaims)
	mixed := []byte(code)
	for i := range mixed {
		if i%3 == 0 {
			mixed[i] = bytes.ToLower(mixed[i : i+1])[0]
		}
	}
	for _, s := range []string{code + "\r\n", code + "\n", code + "\r", strings.ToLower(code), string(mixed), "  " + code + " \t", "\r\n" + code} {
		if !passcode.LooksLikeCode(s) {
			t.Errorf("LooksLikeCode(%q) = false", s)
		}
		if _, err := passcode.Parse(s, r); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
	i := strings.IndexAny(code[len(passcode.Prefix):], "SK") + len(passcode.Prefix)
	if i < len(passcode.Prefix) {
		t.Fatalf("no S or K in %s", code)
	}
	// Unicode folds the long s and the Kelvin sign to S and K; ASCII does not.
	lookalike := strings.NewReplacer("S", "ſ", "K", "\u212a").Replace(code[i : i+1])
	for _, s := range []string{code[:40] + " " + code[40:], code[:40] + "\n" + code[40:], code[:i] + lookalike + code[i+1:]} {
		if _, err := passcode.Parse(s, r); !errors.Is(err, passcode.ErrMalformed) {
			t.Errorf("Parse(%q): %v, want ErrMalformed", s, err)
		}
	}
}

func TestLooksLikeCode(t *testing.T) {
	for s, want := range map[string]bool{
		goldenCode:            true,
		"ocp:AGSPDU":          true, // a damaged scan is still a scan, for Parse to refuse
		"OCP:":                true,
		" Ocp:x\r\n":          true,
		"2026-000123":         false,
		"":                    false,
		"OCP":                 false,
		"OC P:AGSPDU":         false,
		"https://x.example/p": false,
	} {
		if got := passcode.LooksLikeCode(s); got != want {
			t.Errorf("LooksLikeCode(%q) = %v", s, got)
		}
	}
}

const qrAlphanumeric = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// The typical code fits a version 6 QR at level M in alphanumeric mode, and
// reads back from the image.
func TestQRSize(t *testing.T) {
	code := sign(t, siteKey, typicalClaims)
	for _, ch := range code {
		if !strings.ContainsRune(qrAlphanumeric, ch) {
			t.Fatalf("%q is outside the QR alphanumeric set", ch)
		}
	}
	for _, tc := range []struct {
		pass, gate  string
		len, maxVer int
	}{
		{"2026-000123", "south", 150, 6},
		{"2026-000123", "gate-12", 153, 6}, // the most that fits version 6
		{"2026-000123", "gate-123", 155, 7},
		{strings.Repeat("9", passcode.MaxPassLen), strings.Repeat("g", passcode.MaxGateLen), 188, 8},
	} {
		c := typicalClaims
		c.Pass, c.Gate = tc.pass, tc.gate
		code := sign(t, siteKey, c)
		q, err := qrcode.New(code, qrcode.Medium)
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != tc.len || q.VersionNumber != tc.maxVer {
			t.Errorf("%s/%s: %d characters, QR version %d; want %d, %d", tc.pass, tc.gate, len(code), q.VersionNumber, tc.len, tc.maxVer)
		}
	}

	q, err := qrcode.New(code, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(q.Image(300))
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("QR image does not scan: %v", err)
	}
	if _, err := passcode.Verify(res.GetText(), ring(t, siteKey), "south", typicalClaims.NotBefore.Add(time.Hour)); err != nil {
		t.Errorf("scanned QR: %v", err)
	}
}

func TestKeyText(t *testing.T) {
	pemPriv, err := passcode.EncodePrivateKey(siteKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := passcode.ParsePrivateKey(pemPriv)
	if err != nil || !priv.Equal(siteKey) {
		t.Fatalf("private key round trip: %v", err)
	}
	pemPub, err := passcode.EncodePublicKey(pub(siteKey))
	if err != nil || !bytes.HasPrefix(pemPub, []byte("-----BEGIN PUBLIC KEY-----\n")) {
		t.Fatalf("EncodePublicKey: %q, %v", pemPub, err)
	}
	line := base64.StdEncoding.EncodeToString(pub(siteKey)) + "\n"
	for _, in := range [][]byte{pemPub, []byte(line), append([]byte("\n"), pemPub...)} {
		k, err := passcode.ParsePublicKey(in)
		if err != nil || !k.Equal(pub(siteKey)) {
			t.Errorf("ParsePublicKey(%q): %v", in, err)
		}
	}
	for name, in := range map[string][]byte{
		"private PEM":    pemPriv,
		"two keys":       append(bytes.Clone(pemPub), pemPub...),
		"short base64":   []byte(base64.StdEncoding.EncodeToString(pub(siteKey)[:31])),
		"not base64":     []byte("not a key"),
		"empty":          nil,
		"broken PEM":     []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n"),
		"garbage in PEM": []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
	} {
		if _, err := passcode.ParsePublicKey(in); err == nil {
			t.Errorf("ParsePublicKey(%s): no error", name)
		}
	}
	if _, err := passcode.ParsePrivateKey(pemPub); err == nil {
		t.Error("ParsePrivateKey(public PEM): no error")
	}
	if _, err := passcode.EncodePublicKey(pub(siteKey)[:31]); err == nil {
		t.Error("EncodePublicKey(31 bytes): no error")
	}
}

// The committed seed corpora are in testdata/fuzz; run longer with
//
//	go test ./passes/passcode -run '^$' -fuzz FuzzVerify -fuzztime 60s
//	go test ./passes/passcode -run '^$' -fuzz FuzzRoundTrip -fuzztime 60s

// FuzzVerify: no text panics, every refusal has exactly one reason, and
// nothing verifies but the codes the test signed itself.
func FuzzVerify(f *testing.F) {
	genuine := map[string]passcode.Claims{}
	for _, c := range []passcode.Claims{typicalClaims, {Pass: "7", Gate: "x", NotBefore: time.Unix(0, 0), NotAfter: time.Unix(60, 0)}} {
		for _, k := range []ed25519.PrivateKey{siteKey, otherKey} {
			code := sign(f, k, c)
			c.KeyID = passcode.KeyIDOf(pub(k))
			genuine[code] = c
			f.Add(code)
			f.Add(strings.ToLower(code) + "\r\n")
			f.Add(code[:len(code)-1])
		}
	}
	f.Add("2026-000123")
	f.Add("OCP:")
	f.Add("OCP:AE")
	r := ring(f, siteKey, otherKey)
	f.Fuzz(func(t *testing.T, text string) {
		c, err := passcode.Parse(text, r)
		if err != nil {
			checkRefusal(t, err, fmt.Sprintf("Parse(%q)", text))
			if !passcode.LooksLikeCode(text) && !errors.Is(err, passcode.ErrMalformed) {
				t.Fatalf("Parse(%q) of no code: %v", text, err)
			}
			if c != (passcode.Claims{}) {
				t.Fatalf("Parse(%q) = %+v with %v", text, c, err)
			}
			return
		}
		want, ok := genuine[strings.ToUpper(strings.TrimSpace(text))]
		if !ok || !sameClaims(c, want) {
			t.Fatalf("Parse(%q) = %+v: accepted a code nobody signed", text, c)
		}
		if _, err := passcode.Verify(text, r, c.Gate, c.NotBefore); err != nil {
			t.Fatalf("Verify(%q) at its gate and start: %v", text, err)
		}
	})
}

// FuzzRoundTrip: Sign refuses exactly the claims a code cannot carry, and
// Parse gives back what Sign signed.
func FuzzRoundTrip(f *testing.F) {
	f.Add("2026-000123", "south", int64(29627520), int64(1440), uint8(0))
	f.Add("1", "g", int64(0), int64(1), uint8(0))
	f.Add("2026-000123", "south", int64(29627520), int64(0), uint8(0))
	f.Add("2026-000123", "south", int64(1<<32), int64(1), uint8(0))
	f.Add("2026-000123", "south", int64(-1), int64(65535), uint8(0))
	f.Add("2026-000123", "南门", int64(29627520), int64(65536), uint8(30))
	r := ring(f, siteKey)
	f.Fuzz(func(t *testing.T, pass, gate string, nbMinutes, validity int64, seconds uint8) {
		if nbMinutes < -1<<40 || nbMinutes > 1<<40 || validity < -1<<40 || validity > 1<<40 {
			t.Skip() // time.Time arithmetic itself would overflow
		}
		nb := time.Unix(nbMinutes*60+int64(seconds%60), 0)
		c := passcode.Claims{Pass: pass, Gate: gate, NotBefore: nb, NotAfter: nb.Add(time.Duration(validity) * time.Minute)}
		valid := idOK(pass, passcode.MaxPassLen) && idOK(gate, passcode.MaxGateLen) &&
			0 <= nbMinutes && nbMinutes < 1<<32 && 1 <= validity && validity <= 65535 && seconds%60 == 0
		code, err := passcode.Sign(siteKey, c)
		if !valid {
			if !errors.Is(err, passcode.ErrInvalid) {
				t.Fatalf("Sign(%+v) = %q, %v; want ErrInvalid", c, code, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Sign(%+v): %v", c, err)
		}
		if len(code) != passcode.CodeLen(len(pass), len(gate)) || !passcode.LooksLikeCode(code) ||
			strings.Trim(code, qrAlphanumeric) != "" {
			t.Fatalf("Sign(%+v) = %q", c, code)
		}
		got, err := passcode.Parse(code, r)
		c.KeyID = passcode.KeyIDOf(pub(siteKey))
		if err != nil || !sameClaims(got, c) {
			t.Fatalf("Parse(Sign(%+v)) = %+v, %v", c, got, err)
		}
		if got.Check(c.NotBefore, 0) != nil || !errors.Is(got.Check(c.NotAfter, 0), passcode.ErrExpired) || got.CheckGate(gate) != nil {
			t.Fatalf("Check of %+v", got)
		}
	})
}

// idOK is the rule for pass numbers and gates, written again.
func idOK(s string, max int) bool {
	if len(s) < 1 || len(s) > max {
		return false
	}
	for _, r := range []byte(s) {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}
