package escpos_test

import (
	"errors"
	"testing"

	"onecard/devices/escpos"
)

// Answers of a printer in each state (Epson's bit assignments).
func TestParseStatusVectors(t *testing.T) {
	for _, tc := range []struct {
		n, b byte
		want escpos.Status
	}{
		{1, 0x12, escpos.Status{}},
		{1, 0x16, escpos.Status{DrawerHigh: true}},
		{1, 0x1A, escpos.Status{Offline: true}},
		{2, 0x12, escpos.Status{}},
		{2, 0x16, escpos.Status{CoverOpen: true}},
		{2, 0x1A, escpos.Status{FeedButton: true}},
		{2, 0x32, escpos.Status{PaperStopped: true}},
		{2, 0x52, escpos.Status{Error: true}},
		{3, 0x1A, escpos.Status{CutterError: true}},
		{3, 0x32, escpos.Status{Unrecoverable: true}},
		{3, 0x52, escpos.Status{AutoRecover: true}},
		{4, 0x12, escpos.Status{}},
		{4, 0x1E, escpos.Status{PaperNearEnd: true}},
		{4, 0x72, escpos.Status{PaperOut: true}},
		{4, 0x7E, escpos.Status{PaperNearEnd: true, PaperOut: true}},
	} {
		got, err := escpos.ParseStatus(tc.n, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("ParseStatus(%d, %02X) = %+v, %v; want %+v", tc.n, tc.b, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ n, b byte }{{1, 0x00}, {1, 0xFF}, {2, 0x11}, {2, 0x13}, {4, 0x92}, {4, 0x10}, {1, 0x13}} {
		if _, err := escpos.ParseStatus(tc.n, tc.b); !errors.Is(err, escpos.ErrNotStatus) {
			t.Errorf("ParseStatus(%d, %02X): %v, want ErrNotStatus", tc.n, tc.b, err)
		}
	}
	for _, n := range []byte{0, 5, 7, 0xFF} {
		if _, err := escpos.ParseStatus(n, 0x12); err == nil || errors.Is(err, escpos.ErrNotStatus) {
			t.Errorf("ParseStatus(%d, 12): %v, want an error about the query", n, err)
		}
	}
}

func TestReady(t *testing.T) {
	for _, tc := range []struct {
		s    escpos.Status
		want []error
		not  []error
	}{
		{escpos.Status{}, nil, []error{escpos.ErrCoverOpen, escpos.ErrPaperOut, escpos.ErrOffline}},
		{escpos.Status{PaperNearEnd: true, DrawerHigh: true}, nil, nil},
		{escpos.Status{Offline: true, CoverOpen: true}, []error{escpos.ErrCoverOpen}, []error{escpos.ErrPaperOut, escpos.ErrOffline}},
		{escpos.Status{Offline: true, PaperStopped: true, PaperOut: true, PaperNearEnd: true}, []error{escpos.ErrPaperOut}, []error{escpos.ErrCoverOpen}},
		{escpos.Status{Offline: true, CoverOpen: true, PaperOut: true}, []error{escpos.ErrCoverOpen, escpos.ErrPaperOut}, []error{escpos.ErrOffline}},
		{escpos.Status{Offline: true, Error: true, CutterError: true}, []error{escpos.ErrOffline}, []error{escpos.ErrPaperOut}},
		{escpos.Status{Offline: true, FeedButton: true}, []error{escpos.ErrOffline}, nil},
	} {
		err := tc.s.Ready()
		if (err == nil) != (tc.want == nil) {
			t.Errorf("%v: Ready() = %v", tc.s, err)
		}
		for _, w := range tc.want {
			if !errors.Is(err, w) {
				t.Errorf("%v: Ready() = %v, want it to wrap %v", tc.s, err, w)
			}
		}
		for _, w := range tc.not {
			if errors.Is(err, w) {
				t.Errorf("%v: Ready() = %v, should not wrap %v", tc.s, err, w)
			}
		}
	}
	if got := (escpos.Status{Offline: true, CoverOpen: true, PaperOut: true}).Ready().Error(); got != "cover open; paper out" {
		t.Errorf("message %q", got)
	}
	if got := (escpos.Status{Offline: true, PaperOut: true, PaperNearEnd: true}).String(); got != "offline, paper out" {
		t.Errorf("String() = %q", got)
	}
	if got := (escpos.Status{}).String(); got != "ok" {
		t.Errorf("String() = %q", got)
	}
}

// statusBits re-encodes what answer n reports, independently of the
// parser, with the fixed bits set.
func statusBits(n byte, s escpos.Status) byte {
	b := byte(0x12)
	set := func(on bool, bits byte) {
		if on {
			b |= bits
		}
	}
	switch n {
	case 1:
		set(s.DrawerHigh, 1<<2)
		set(s.Offline, 1<<3)
	case 2:
		set(s.CoverOpen, 1<<2)
		set(s.FeedButton, 1<<3)
		set(s.PaperStopped, 1<<5)
		set(s.Error, 1<<6)
	case 3:
		set(s.CutterError, 1<<3)
		set(s.Unrecoverable, 1<<5)
		set(s.AutoRecover, 1<<6)
	case 4:
		set(s.PaperNearEnd, 3<<2)
		set(s.PaperOut, 3<<5)
	}
	return b
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range [][2]byte{{1, 0x12}, {1, 0x1A}, {2, 0x16}, {2, 0x72}, {3, 0x52}, {4, 0x7E}, {4, 0x1E}, {9, 0x12}, {1, 0xFF}, {2, 0x11}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, n, b byte) {
		s, err := escpos.ParseStatus(n, b)
		valid := n >= 1 && n <= 4 && b&0x93 == 0x12
		if valid != (err == nil) {
			t.Fatalf("ParseStatus(%d, %02X) error %v, valid %t", n, b, err, valid)
		}
		if err != nil {
			if s != (escpos.Status{}) {
				t.Fatalf("error with a status %+v", s)
			}
			return
		}
		// Only the bits this query defines may differ: bits 5–6 of answer 1
		// and bit 2 of answer 3 are undefined; the paper sensor pairs count
		// if either bit is set.
		undefined := map[byte]byte{1: 0x60, 2: 0x00, 3: 0x04, 4: 0x00}[n]
		re := statusBits(n, s)
		if n == 4 {
			if (b&0x0C != 0) != (re&0x0C != 0) || (b&0x60 != 0) != (re&0x60 != 0) {
				t.Fatalf("ParseStatus(4, %02X) = %+v", b, s)
			}
			return
		}
		if re&^undefined != b&^undefined {
			t.Fatalf("ParseStatus(%d, %02X) = %+v, which re-encodes as %02X", n, b, s, re)
		}
		if s.Ready() != nil && n != 1 && n != 2 {
			t.Fatalf("answer %d cannot make a printer unready: %+v", n, s)
		}
	})
}
