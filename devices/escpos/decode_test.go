package escpos_test

import (
	"bufio"
	"bytes"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode"
	"unicode/utf8"

	"onecard/devices/escpos"
)

func span(text string, bold bool, w, h int) escpos.Span {
	return escpos.Span{Text: text, Bold: bold, Width: w, Height: h}
}

func plain(text string) escpos.Span { return span(text, false, 1, 1) }

// receipt is a small receipt as billing would build it.
func receipt() *escpos.Builder {
	return new(escpos.Builder).Init().
		Align(escpos.Center).Size(2, 2).Bold(true).Line("物业收费收据").
		Size(1, 1).Bold(false).Line("No.0000123").
		Align(escpos.Left).Text("房号: ").Bold(true).Text("3-1-502").Bold(false).LF().
		Text("合计: ").Size(1, 2).Text("￥1,200.00").Size(1, 1).LF().
		Align(escpos.Center).QR("https://pay.example/r/0000123", 6, escpos.QRLevelM).
		Feed(2).
		Cut(escpos.PartialCut)
}

func TestDecodeReceipt(t *testing.T) {
	got := escpos.Decode(build(t, receipt()))
	want := []escpos.Block{
		escpos.Line{Align: escpos.Center, Spans: []escpos.Span{span("物业收费收据", true, 2, 2)}},
		escpos.Line{Align: escpos.Center, Spans: []escpos.Span{plain("No.0000123")}},
		escpos.Line{Align: escpos.Left, Spans: []escpos.Span{plain("房号: "), span("3-1-502", true, 1, 1)}},
		escpos.Line{Align: escpos.Left, Spans: []escpos.Span{plain("合计: "), span("￥1,200.00", false, 1, 2)}},
		escpos.QR{Data: []byte("https://pay.example/r/0000123"), Align: escpos.Center, Model: 2, Module: 6, Level: escpos.QRLevelM},
		escpos.Line{Align: escpos.Center},
		escpos.Line{Align: escpos.Center},
		escpos.Cut{Mode: escpos.PartialCut},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%#v\nwant\n%#v", got, want)
	}
}

func TestDecodePrinterRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want []escpos.Block
	}{
		{"text without a line feed is not printed", []byte("held"), nil},
		{"ESC @ clears the print buffer", []byte("lost\x1b@kept\n"), []escpos.Block{escpos.Line{Spans: []escpos.Span{plain("kept")}}}},
		{"ESC a mid-line is ignored", []byte("a\x1ba\x01b\nc\n"), []escpos.Block{
			escpos.Line{Spans: []escpos.Span{plain("ab")}},
			escpos.Line{Spans: []escpos.Span{plain("c")}},
		}},
		{"ESC a takes ASCII digits", []byte("\x1ba2r\n"), []escpos.Block{escpos.Line{Align: escpos.Right, Spans: []escpos.Span{plain("r")}}}},
		{"ESC ! sets bold and double size", []byte("\x1b!\x38X\x1b!\x00y\n"), []escpos.Block{
			escpos.Line{Spans: []escpos.Span{span("X", true, 2, 2), plain("y")}},
		}},
		{"status query mid-line", []byte("ab\x10\x04\x01cd\n"), []escpos.Block{
			escpos.Query{N: 1},
			escpos.Line{Spans: []escpos.Span{plain("abcd")}},
		}},
		{"stray DLE", []byte("\x10A\n"), []escpos.Block{
			escpos.Unknown{Bytes: []byte{0x10}},
			escpos.Line{Spans: []escpos.Span{plain("A")}},
		}},
		{"unknown commands are skipped with their parameters", []byte("\x1b-\x01u\x1bt\x11\x1dh\x50\x1dk\x04123\x00\x1c!\x00x\n"), []escpos.Block{
			escpos.Unknown{Bytes: []byte{0x1B, '-', 0x01}},
			escpos.Unknown{Bytes: []byte{0x1B, 't', 0x11}},
			escpos.Unknown{Bytes: []byte{0x1D, 'h', 0x50}},
			escpos.Unknown{Bytes: []byte{0x1D, 'k', 0x04, '1', '2', '3', 0x00}},
			escpos.Unknown{Bytes: []byte{0x1C, '!', 0x00}},
			escpos.Line{Spans: []escpos.Span{plain("ux")}},
		}},
		{"GS ! out of range is ignored", []byte("\x1d!\x88a\n"), []escpos.Block{
			escpos.Unknown{Bytes: []byte{0x1D, '!', 0x88}},
			escpos.Line{Spans: []escpos.Span{plain("a")}},
		}},
		{"QR print without data prints nothing", []byte("\x1d(k\x03\x001Q0"), nil},
		{"QR module out of range is ignored", []byte("\x1d(k\x03\x001C\x11\x1d(k\x04\x001P0z\x1d(k\x03\x001Q0"), []escpos.Block{
			escpos.Unknown{Bytes: []byte{0x1D, '(', 'k', 0x03, 0x00, '1', 'C', 0x11}},
			escpos.QR{Data: []byte("z"), Model: 2, Module: 3, Level: escpos.QRLevelL},
		}},
		{"cut function A prints the line first", []byte("tail\x1dV\x00"), []escpos.Block{
			escpos.Line{Spans: []escpos.Span{plain("tail")}},
			escpos.Cut{Mode: escpos.FullCut},
		}},
		{"cut function B", []byte("\x1dV\x42\x05"), []escpos.Block{escpos.Cut{Mode: escpos.PartialCut}}},
		{"old cut commands", []byte("\x1bi\x1bm"), []escpos.Block{escpos.Cut{Mode: escpos.PartialCut}, escpos.Cut{Mode: escpos.PartialCut}}},
		{"outside Chinese mode, code page 437", []byte("\x9c5\n\x1c&\xce\xef\x1c.\x9c\n"), []escpos.Block{
			escpos.Line{Spans: []escpos.Span{plain("£5")}},
			escpos.Line{Spans: []escpos.Span{plain("物£")}},
		}},
		{"broken GB18030", []byte("\x1c&\xce\n"), []escpos.Block{escpos.Line{Spans: []escpos.Span{plain("\uFFFD")}}}},
		{"ESC d after text", []byte("x\x1bd\x02"), []escpos.Block{
			escpos.Line{Spans: []escpos.Span{plain("x")}},
			escpos.Line{},
		}},
		{"truncated QR store", []byte("a\n\x1d(k\x10\x001P0abc"), []escpos.Block{escpos.Line{Spans: []escpos.Span{plain("a")}}}},
	} {
		got := escpos.Decode(tc.in)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tc.name, got, tc.want)
		}
	}
}

func TestDecodeLongLine(t *testing.T) {
	in := append(bytes.Repeat([]byte("x"), escpos.MaxLine+10), '\n')
	got := escpos.Decode(in)
	if len(got) != 2 || len(got[0].(escpos.Line).Text()) != escpos.MaxLine || got[1].(escpos.Line).Text() != "xxxxxxxxxx" {
		t.Fatalf("long line decoded as %d blocks", len(got))
	}
}

// A long line is cut between characters, never inside one: the fuzzer
// found a four-byte GB18030 character torn at MaxLine.
func TestDecodeLongLineKeepsCharacters(t *testing.T) {
	for _, tail := range []string{"𠀀", "😀", "物", "ab"} {
		for pad := escpos.MaxLine - 6; pad < escpos.MaxLine; pad++ {
			s := strings.Repeat("0", pad) + strings.Repeat(tail, 4)
			var got string
			for _, b := range escpos.Decode(build(t, new(escpos.Builder).Line(s))) {
				got += b.(escpos.Line).Text()
			}
			if got != s {
				t.Fatalf("pad %d, tail %q: %s comes back as %s", pad, tail, short(s[pad-10:]), short(got[pad-10:]))
			}
		}
	}
}

// check verifies what any decoded stream must satisfy.
func check(t *testing.T, in []byte, blocks []escpos.Block) {
	t.Helper()
	text := 0
	for _, b := range blocks {
		switch b := b.(type) {
		case escpos.Line:
			if b.Align > escpos.Right {
				t.Fatalf("line with alignment %d", b.Align)
			}
			for _, s := range b.Spans {
				if s.Text == "" || !utf8.ValidString(s.Text) {
					t.Fatalf("span %q", s.Text)
				}
				if s.Width < 1 || s.Width > escpos.MaxSize || s.Height < 1 || s.Height > escpos.MaxSize {
					t.Fatalf("span size %d×%d", s.Width, s.Height)
				}
				text += len(s.Text)
			}
		case escpos.QR:
			if len(b.Data) == 0 || len(b.Data) > escpos.MaxQRData || b.Module < 1 || b.Module > escpos.MaxQRModule ||
				b.Level < escpos.QRLevelL || b.Level > escpos.QRLevelH || b.Model < 1 || b.Model > 3 || b.Align > escpos.Right {
				t.Fatalf("QR %+v", b)
			}
		case escpos.Cut:
			if b.Mode > escpos.PartialCut {
				t.Fatalf("cut %v", b.Mode)
			}
		case escpos.Query, escpos.Unknown:
		default:
			t.Fatalf("block %T", b)
		}
	}
	// A byte of text decodes to at most 3 bytes of UTF-8 (U+FFFD).
	if text > 3*len(in) {
		t.Fatalf("%d bytes of text from %d bytes", text, len(in))
	}
}

func FuzzDecode(f *testing.F) {
	job, _ := receipt().Bytes()
	f.Add(job)
	f.Add([]byte("\x1b@\x1c&\xce\xef\xd2\xb5\n\x1dV\x41\x00"))
	f.Add([]byte("ab\x10\x04\x01\x10\x04\x02cd\n\x10\x04\x07\x01"))
	f.Add([]byte("\x1d(k\x04\x001A2\x00\x1d(k\x03\x001C\x06\x1d(k\x05\x001P0hi\x1d(k\x03\x001Q0"))
	f.Add([]byte("\x1b*\x21\x02\x00abcdef\x1dv0\x00\x01\x00\x02\x00xy\x1bD\x08\x10\x00"))
	f.Add([]byte("\x1bd\xff\x1b!\xff\x1d!\x77X\x1ba\x31\n\x1b\x00\x1d\x00\x1c\x00\x10\x10\x04"))
	f.Fuzz(func(t *testing.T, in []byte) {
		blocks := escpos.Decode(in)
		check(t, in, blocks)

		// Streaming, a byte at a time, gives the same.
		d := escpos.NewDecoder(bufio.NewReader(iotest.OneByteReader(bytes.NewReader(in))))
		var streamed []escpos.Block
		for {
			b, err := d.Next()
			if err != nil {
				break
			}
			streamed = append(streamed, b)
		}
		if !reflect.DeepEqual(streamed, blocks) {
			t.Fatalf("streamed %#v\nwhole %#v", streamed, blocks)
		}

		// What a prefix prints, the whole stream prints first: a printer
		// never takes back what it printed.
		head := escpos.Decode(in[:len(in)/2])
		if len(head) > len(blocks) || (len(head) > 0 && !reflect.DeepEqual(head, blocks[:len(head)])) {
			t.Fatalf("prefix decodes to %#v\nwhole to %#v", head, blocks)
		}
	})
}

// What the Builder writes, the Decoder reads back: any text, as the
// Builder documents it (controls replaced).
func FuzzBuilderRoundTrip(f *testing.F) {
	f.Add("物业收费收据 No.123", true, 2, 1)
	f.Add("a\tb\x1b@\x10\x04\x01c", false, 1, 1)
	f.Add("￥1,200.00 壹仟贰佰元整", false, 8, 8)
	f.Add("ÄÖÜ € ¥ 😀", true, 1, 3)
	f.Fuzz(func(t *testing.T, s string, bold bool, w, h int) {
		w, h = 1+abs(w)%escpos.MaxSize, 1+abs(h)%escpos.MaxSize
		s = strings.ReplaceAll(s, "\n", " ")
		job := build(t, new(escpos.Builder).Init().Bold(bold).Size(w, h).Line(s))
		// A line longer than MaxLine comes back in pieces.
		var got strings.Builder
		for _, b := range escpos.Decode(job) {
			line, ok := b.(escpos.Line)
			if !ok {
				t.Fatalf("%s: decoded a %T", short(s), b)
			}
			for _, sp := range line.Spans {
				if sp.Bold != bold || sp.Width != w || sp.Height != h {
					t.Fatalf("%s: span style %t %d×%d, want %t %d×%d", short(s), sp.Bold, sp.Width, sp.Height, bold, w, h)
				}
				got.WriteString(sp.Text)
			}
		}
		if want := sanitize(s); got.String() != want {
			t.Fatalf("%s: decoded %s, want %s", short(s), short(got.String()), short(want))
		}
	})
}

// short quotes s, cut to keep failure messages readable.
func short(s string) string {
	if len(s) > 200 {
		return strconv.Quote(s[:200]) + "…"
	}
	return strconv.Quote(s)
}

func abs(n int) int {
	if n < 0 {
		return -(n + 1)
	}
	return n
}

// sanitize is what Builder.Text promises to print for s.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			r = ' '
		case !unicode.IsGraphic(r):
			r = '?'
		}
		b.WriteRune(r) // invalid UTF-8 came as U+FFFD
	}
	return b.String()
}
