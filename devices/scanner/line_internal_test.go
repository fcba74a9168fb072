package scanner

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// split runs a splitter over in, cut into pieces of at most chunk bytes,
// and flushes it at the end, as the driver does when the port fails.
func split(in []byte, chunk, maxLen int, aim bool) []event {
	sp := &splitter{maxLen: maxLen, aim: aim}
	var evs []event
	emit := func(ev event) { evs = append(evs, ev) }
	at := time.Unix(1700000000, 0)
	for len(in) > 0 {
		n := min(chunk, len(in))
		sp.feed(in[:n], at, emit)
		in = in[n:]
	}
	sp.flush(emit)
	return evs
}

// reference is the line rules written out plainly, for FuzzSplit to hold
// the splitter to.
func reference(in []byte, maxLen int, aim bool) []event {
	var evs []event
	lines := bytes.FieldsFunc(in, func(r rune) bool { return r == '\r' || r == '\n' })
	ended := len(in) > 0 && (in[len(in)-1] == '\r' || in[len(in)-1] == '\n')
	for i, l := range lines {
		reject := func(why error, off int) {
			// The splitter keeps no more than maxLen+1 bytes of a line.
			head := l[:min(len(l), maxHead, maxLen+1)]
			evs = append(evs, event{err: &LineError{Err: why, Line: head, Len: len(l), Offset: off}})
		}
		off, bad := badByte(l)
		id := aim && len(l) >= 3 && l[0] == ']' && alnum(l[1]) && alnum(l[2])
		switch {
		case i == len(lines)-1 && !ended:
			reject(ErrUnterminated, 0)
		case len(l) > maxLen:
			reject(ErrTooLong, 0)
		case bad != nil:
			reject(bad, off)
		case id && len(l) == 3:
			reject(ErrEmpty, 0)
		case id:
			evs = append(evs, event{scan: Scan{Code: string(l[3:]), Symbology: string(l[:3])}})
		default:
			evs = append(evs, event{scan: Scan{Code: string(l)}})
		}
	}
	return evs
}

// badByte finds the first invalid or control character of l: where it
// starts, and which it is.
func badByte(l []byte) (int, error) {
	for off := 0; off < len(l); {
		r, n := utf8.DecodeRune(l[off:])
		switch {
		case r == utf8.RuneError && n == 1:
			return off, ErrEncoding
		case unicode.IsControl(r):
			return off, ErrControl
		}
		off += n
	}
	return 0, nil
}

// strip drops the times, which split sets and reference does not.
func strip(evs []event) []event {
	var out []event
	if len(evs) > 0 {
		out = make([]event, len(evs))
	}
	for i, ev := range evs {
		ev.scan.At = time.Time{}
		if ev.err != nil {
			e := *ev.err
			e.At = time.Time{}
			ev.err = &e
		}
		out[i] = ev
	}
	return out
}

func FuzzSplit(f *testing.F) {
	f.Add([]byte("SF1001\r\nSF1002\rSF1003\n\n\r"), uint8(1), false)
	f.Add([]byte("]C0SF1001\r\n]C0\r\n]x\n"), uint8(3), true)
	f.Add([]byte("\xff\x00\r\nAB\x1bC\nok\u0085\r0123456789abcdefXYZ\r\n"), uint8(5), false)
	f.Add([]byte("SF10"), uint8(2), false)
	f.Add([]byte("京A12345\r\n\xe4\xba\r\n"), uint8(7), true)
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8, aim bool) {
		const maxLen = 16 // small, so that long lines are common
		whole := split(in, len(in)+1, maxLen, aim)
		pieces := split(in, 1+int(chunk)%8, maxLen, aim)
		if !reflect.DeepEqual(whole, pieces) {
			t.Fatalf("in pieces of %d: %v\nwhole: %v", 1+int(chunk)%8, pieces, whole)
		}
		if want := reference(in, maxLen, aim); !reflect.DeepEqual(strip(whole), want) {
			t.Fatalf("%q: %s\nwant %s", in, show(whole), show(want))
		}
		for _, ev := range whole {
			if ev.err != nil {
				if !errors.Is(ev.err, ErrRejected) || ev.err.Error() == "" || len(ev.err.Line) > maxHead {
					t.Fatalf("bad rejection %#v", ev.err)
				}
				continue
			}
			c := ev.scan.Code
			if c == "" || len(c) > maxLen || !utf8.ValidString(c) {
				t.Fatalf("scanned %q", c)
			}
			for _, r := range c {
				if unicode.IsControl(r) {
					t.Fatalf("scanned %q, with a control character", c)
				}
			}
		}
	})
}

func show(evs []event) string {
	var b bytes.Buffer
	for _, ev := range evs {
		if ev.err != nil {
			b.WriteString("\n  " + ev.err.Error())
		} else {
			b.WriteString("\n  scan " + ev.scan.Symbology + "|" + ev.scan.Code)
		}
	}
	return b.String()
}
