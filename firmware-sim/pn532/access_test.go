package pn532sim

import "testing"

// encodeAccess is decodeAccess's inverse, written from the datasheet's
// byte layout independently of it.
func encodeAccess(cond [4]uint8) [3]byte {
	var c1, c2, c3 byte
	for i, c := range cond {
		c1 |= (c >> 2 & 1) << i
		c2 |= (c >> 1 & 1) << i
		c3 |= (c & 1) << i
	}
	return [3]byte{(^c2&0x0F)<<4 | ^c1&0x0F, c1<<4 | ^c3&0x0F, c3<<4 | c2}
}

// Known access bytes, from the datasheet and common card layouts.
func TestDecodeAccessVectors(t *testing.T) {
	for _, tc := range []struct {
		b    [3]byte
		want [4]uint8
	}{
		{[3]byte{0xFF, 0x07, 0x80}, [4]uint8{0b000, 0b000, 0b000, 0b001}}, // transport
		{[3]byte{0x78, 0x77, 0x88}, [4]uint8{0b100, 0b100, 0b100, 0b011}}, // data r A|B w B; trailer by B
		{[3]byte{0x7F, 0x07, 0x88}, [4]uint8{0b000, 0b000, 0b000, 0b011}},
		{[3]byte{0x08, 0x77, 0x8F}, [4]uint8{0b110, 0b110, 0b110, 0b011}}, // value blocks
	} {
		got, ok := decodeAccess(tc.b[0], tc.b[1], tc.b[2])
		if !ok || got != tc.want {
			t.Errorf("% X: %03b %v, want %03b", tc.b, got, ok, tc.want)
		}
		if enc := encodeAccess(tc.want); enc != tc.b {
			t.Errorf("encode %03b = % X, want % X", tc.want, enc, tc.b)
		}
	}
}

// Every one of the 4096 conditions round-trips, and flipping any one bit of
// its bytes is a format violation.
func TestDecodeAccessExhaustive(t *testing.T) {
	for n := range 1 << 12 {
		cond := [4]uint8{uint8(n & 7), uint8(n >> 3 & 7), uint8(n >> 6 & 7), uint8(n >> 9 & 7)}
		b := encodeAccess(cond)
		if got, ok := decodeAccess(b[0], b[1], b[2]); !ok || got != cond {
			t.Fatalf("%03b: % X decodes to %03b %v", cond, b, got, ok)
		}
		for i := range 24 {
			bad := b
			bad[i/8] ^= 1 << (i % 8)
			if _, ok := decodeAccess(bad[0], bad[1], bad[2]); ok {
				t.Fatalf("% X (bit %d of % X flipped) accepted", bad, i, b)
			}
		}
	}
}

// The grey rows: key B is readable, so it is no key.
func TestKeyBReadable(t *testing.T) {
	for c, want := range [8]bool{0b000: true, 0b010: true, 0b001: true} {
		if got := trailerRules[c].keyBReadable(); got != want {
			t.Errorf("trailer %03b: key B readable %v, want %v", c, got, want)
		}
	}
}
