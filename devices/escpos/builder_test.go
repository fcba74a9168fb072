package escpos_test

import (
	"bytes"
	"strings"
	"testing"

	"onecard/devices/escpos"
)

// hx parses "1B 40 …" for readable fixtures.
func hx(s string) []byte {
	var out []byte
	for _, f := range strings.Fields(s) {
		var b byte
		for _, c := range f {
			b <<= 4
			switch {
			case c >= '0' && c <= '9':
				b |= byte(c - '0')
			case c >= 'A' && c <= 'F':
				b |= byte(c - 'A' + 10)
			default:
				panic("hx: " + f)
			}
		}
		out = append(out, b)
	}
	return out
}

func build(t *testing.T, b *escpos.Builder) []byte {
	t.Helper()
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Golden vectors: the command bytes of PROTOCOLS.md.
func TestBuilderGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    *escpos.Builder
		want string
	}{
		{"init", new(escpos.Builder).Init(), "1B 40"},
		{"align", new(escpos.Builder).Align(escpos.Left).Align(escpos.Center).Align(escpos.Right), "1B 61 00 1B 61 01 1B 61 02"},
		{"bold", new(escpos.Builder).Bold(true).Bold(false), "1B 45 01 1B 45 00"},
		{"size", new(escpos.Builder).Size(1, 1).Size(2, 2).Size(1, 3).Size(8, 8), "1D 21 00 1D 21 11 1D 21 02 1D 21 77"},
		{"line", new(escpos.Builder).Line("No.42"), "4E 6F 2E 34 32 0A"},
		{"chinese", new(escpos.Builder).Text("物业").Text("费").LF(), "1C 26 CE EF D2 B5 B7 D1 0A"},
		{"init leaves Chinese mode", new(escpos.Builder).Text("物").Init().Text("业"), "1C 26 CE EF 1B 40 1C 26 D2 B5"},
		{"mixed", new(escpos.Builder).Text("A￥1"), "41 1C 26 A3 A4 31"},
		{"feed", new(escpos.Builder).Feed(3), "1B 64 03"},
		{"qr", new(escpos.Builder).QR("hi", 6, escpos.QRLevelM),
			"1D 28 6B 04 00 31 41 32 00 " + // model 2
				"1D 28 6B 03 00 31 43 06 " + // module size
				"1D 28 6B 03 00 31 45 31 " + // level M
				"1D 28 6B 05 00 31 50 30 68 69 " + // store: pL = 2 + 3
				"1D 28 6B 03 00 31 51 30"}, // print
		{"cut", new(escpos.Builder).Cut(escpos.FullCut).Cut(escpos.PartialCut), "1D 56 41 00 1D 56 42 00"},
		// Nothing in text can become a command.
		{"controls", new(escpos.Builder).Text("a\x1b@\tb\x10\x04\x01\x7f\u0085c\nd"), "61 3F 40 20 62 3F 3F 3F 3F 1C 26 3F 63 0A 64"},
	} {
		if got := build(t, tc.b); !bytes.Equal(got, hx(tc.want)) {
			t.Errorf("%s: % X\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestBuilderQRLength(t *testing.T) {
	data := strings.Repeat("x", 300)
	got := build(t, new(escpos.Builder).QR(data, 3, escpos.QRLevelL))
	store := []byte{0x1D, 0x28, 0x6B, 0x2F, 0x01, 0x31, 0x50, 0x30} // 303 = 0x012F
	i := bytes.Index(got, store)
	if i < 0 || !bytes.HasPrefix(got[i+len(store):], []byte(data)) {
		t.Fatalf("store function not found with pL pH = 2F 01: % X", got[:40])
	}
}

func TestBuilderErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    *escpos.Builder
		want string
	}{
		{"size 0", new(escpos.Builder).Size(0, 1), "character size"},
		{"size 9", new(escpos.Builder).Size(1, 9), "character size"},
		{"align", new(escpos.Builder).Align(escpos.Align(3)), "alignment"},
		{"feed", new(escpos.Builder).Feed(256), "feed"},
		{"qr empty", new(escpos.Builder).QR("", 3, escpos.QRLevelL), "QR code of 0 bytes"},
		{"qr long", new(escpos.Builder).QR(strings.Repeat("1", escpos.MaxQRData+1), 3, escpos.QRLevelL), "QR code of"},
		{"qr module", new(escpos.Builder).QR("x", 17, escpos.QRLevelL), "module size"},
		{"qr level", new(escpos.Builder).QR("x", 3, escpos.QRLevel(1)), "level"},
		{"qr status query", new(escpos.Builder).QR("a\x10\x04\x01", 3, escpos.QRLevelL), "DLE EOT"},
		{"cut", new(escpos.Builder).Cut(escpos.CutMode(2)), "cut mode"},
		// The first error stays, and nothing more is added.
		{"sticky", new(escpos.Builder).Size(0, 0).Feed(999).Line("x"), "character size"},
	} {
		out, err := tc.b.Bytes()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "escpos: ") || out != nil {
			t.Errorf("%s: %q, %v; want an error about %q", tc.name, out, err, tc.want)
		}
	}
}
