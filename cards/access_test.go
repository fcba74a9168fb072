package cards_test

import (
	"errors"
	"testing"

	"onecard/cards"
)

func TestAccessBytesMatchTheDatasheet(t *testing.T) {
	transport := [3]cards.DataAccess{cards.DataTransport, cards.DataTransport, cards.DataTransport}
	if got := cards.AccessBytes(transport, cards.TrailerTransport); got != [3]byte{0xFF, 0x07, 0x80} {
		t.Fatalf("transport access bytes % X, want FF 07 80", got)
	}
	issued := [3]cards.DataAccess{cards.DataReadABWrite, cards.DataReadABWrite, cards.DataReadABWrite}
	if got := cards.AccessBytes(issued, cards.TrailerKeyB); got != [3]byte{0x78, 0x77, 0x88} {
		t.Fatalf("issued access bytes % X, want 78 77 88", got)
	}
	if cards.TransportTrailer.Access != [3]byte{0xFF, 0x07, 0x80} {
		t.Fatal("transport trailer")
	}
}

func TestEveryConditionRoundTrips(t *testing.T) {
	all := []cards.DataAccess{cards.DataTransport, cards.DataReadABWrite, cards.DataReadOnly}
	trailers := []cards.TrailerAccess{cards.TrailerTransport, cards.TrailerKeyB, cards.TrailerFrozen}
	for _, a := range all {
		for _, b := range all {
			for _, tr := range trailers {
				acc := cards.AccessBytes([3]cards.DataAccess{a, b, a}, tr)
				if err := cards.ValidateAccessBytes(acc); err != nil {
					t.Fatalf("%s/%s/%s: built bytes do not validate: %v", a.Name, b.Name, tr.Name, err)
				}
				c1, c2, c3, _ := cards.Conditions(acc, 1)
				if c1 != b.C1 || c2 != b.C2 || c3 != b.C3 {
					t.Fatalf("block 1 conditions %v%v%v, want %+v", c1, c2, c3, b)
				}
				c1, c2, c3, _ = cards.Conditions(acc, 3)
				if c1 != tr.C1 || c2 != tr.C2 || c3 != tr.C3 {
					t.Fatalf("trailer conditions %v%v%v, want %+v", c1, c2, c3, tr)
				}
			}
		}
	}
}

// TestMalformedTrailerCannotBeBuilt: every single-bit corruption of valid
// access bytes is caught before a trailer block exists to write.
func TestMalformedTrailerCannotBeBuilt(t *testing.T) {
	good := cards.AccessBytes([3]cards.DataAccess{cards.DataReadABWrite, cards.DataReadABWrite, cards.DataReadABWrite}, cards.TrailerKeyB)
	for i := 0; i < 24; i++ {
		bad := good
		bad[i/8] ^= 1 << (i % 8)
		tr := cards.Trailer{Access: bad}
		if _, err := tr.Block(); !errors.Is(err, cards.ErrAccessBits) {
			t.Fatalf("bit %d flipped (% X): Block() = %v", i, bad, err)
		}
	}
	tr := cards.Trailer{KeyA: [6]byte{1, 2, 3, 4, 5, 6}, Access: good, GPB: 0x69, KeyB: [6]byte{7, 8, 9, 10, 11, 12}}
	b, err := tr.Block()
	if err != nil || b != [16]byte{1, 2, 3, 4, 5, 6, 0x78, 0x77, 0x88, 0x69, 7, 8, 9, 10, 11, 12} {
		t.Fatalf("trailer block % X %v", b, err)
	}
}

func FuzzValidateAccessBytes(f *testing.F) {
	f.Add([]byte{0xFF, 0x07, 0x80})
	f.Add([]byte{0x78, 0x77, 0x88})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) != 3 {
			return
		}
		b := [3]byte{in[0], in[1], in[2]}
		if cards.ValidateAccessBytes(b) != nil {
			return
		}
		// Valid bytes decode to conditions that rebuild the same bytes.
		var data [3]cards.DataAccess
		for i := range data {
			c1, c2, c3, _ := cards.Conditions(b, i)
			data[i] = cards.DataAccess{C1: c1, C2: c2, C3: c3}
		}
		c1, c2, c3, _ := cards.Conditions(b, 3)
		if got := cards.AccessBytes(data, cards.TrailerAccess{C1: c1, C2: c2, C3: c3}); got != b {
			t.Fatalf("% X decodes and rebuilds to % X", b, got)
		}
	})
}
