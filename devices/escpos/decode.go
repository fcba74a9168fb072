package escpos

import (
	"bytes"
	"errors"
	"io"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Block is one thing the printer does with the stream: print a Line or a
// QR code, Cut, answer a Query, or skip an Unknown command.
type Block interface{ block() }

// Line is a printed line: its spans left to right, none for a blank line.
type Line struct {
	Align Align
	Spans []Span
}

// Span is a run of text in one style.
type Span struct {
	Text string
	Bold bool
	// Width and Height are the size multipliers, 1 to MaxSize.
	Width, Height int
}

// QR is a printed QR code.
type QR struct {
	Data   []byte
	Align  Align
	Model  int // 1 or 2 (51, micro QR, is kept as 3)
	Module int // dots per module
	Level  QRLevel
}

// Cut is a cut of the paper: the end of a receipt.
type Cut struct{ Mode CutMode }

// Query is a real-time status query (DLE EOT n) met in the stream. A
// printer answers it as the bytes arrive, whatever it is doing, and prints
// nothing for it.
type Query struct{ N byte }

// Unknown is a command the decoder does not know, or one with parameters
// out of range, that the printer would ignore: its bytes.
type Unknown struct{ Bytes []byte }

func (Line) block()    {}
func (QR) block()      {}
func (Cut) block()     {}
func (Query) block()   {}
func (Unknown) block() {}

// Text returns the line's text, spans joined.
func (l Line) Text() string {
	var b []byte
	for _, s := range l.Spans {
		b = append(b, s.Text...)
	}
	return string(b)
}

// MaxLine is how many bytes of text the decoder holds for a line: a longer
// line is returned in pieces (a printer wraps a line at the paper's edge).
const MaxLine = 4096

// Decoder reads an ESC/POS stream as a printer does and returns what it
// prints. It survives any input: a byte sequence it cannot make sense of
// comes back as Unknown and decoding goes on. Text in Chinese mode is read
// as GB18030, outside it as code page 437.
type Decoder struct {
	r    io.ByteReader
	back int // a byte to read again, -1 if none

	st   style
	qr   qrState
	line []rawSpan // text waiting for a line feed
	n    int       // bytes in line
	mb   int       // GB18030: bytes still to come of a character, -1 the second

	out []Block // blocks decoded, not yet returned
}

// style is the print mode text is printed in.
type style struct {
	align   Align
	bold    bool
	w, h    int
	chinese bool
}

type rawSpan struct {
	st  style
	raw []byte
}

type qrState struct {
	model, module int
	level         QRLevel
	data          []byte
}

// NewDecoder returns a Decoder reading r, in the printer's power-on state.
func NewDecoder(r io.ByteReader) *Decoder {
	d := &Decoder{r: r, back: -1}
	d.reset()
	return d
}

// Decode returns what b prints. Text after the last line feed is not
// printed, as a printer holds it until the line ends.
func Decode(b []byte) []Block {
	d := NewDecoder(bytes.NewReader(b))
	var out []Block
	for {
		blk, err := d.Next()
		if err != nil {
			return out
		}
		out = append(out, blk)
	}
}

// reset is ESC @ and power-on: the print buffer is cleared and every
// setting returns to its default.
func (d *Decoder) reset() {
	d.st = style{w: 1, h: 1}
	d.qr = qrState{model: 2, module: 3, level: QRLevelL}
	d.line, d.n, d.mb = nil, 0, 0
}

// Next returns the next block. It returns the reader's error (io.EOF at
// the end) once no block is left; a stream that ends inside a command
// returns io.ErrUnexpectedEOF.
func (d *Decoder) Next() (Block, error) {
	for len(d.out) == 0 {
		if err := d.step(); err != nil {
			return nil, err
		}
	}
	b := d.out[0]
	d.out[0] = nil
	d.out = d.out[1:]
	return b, nil
}

func (d *Decoder) emit(b Block) { d.out = append(d.out, b) }

func (d *Decoder) readByte() (byte, error) {
	if d.back >= 0 {
		c := byte(d.back)
		d.back = -1
		return c, nil
	}
	return d.r.ReadByte()
}

// param reads a byte of a command: the stream may not end there.
func (d *Decoder) param() (byte, error) {
	c, err := d.readByte()
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return c, err
}

// params reads n bytes of a command.
func (d *Decoder) params(n int) ([]byte, error) {
	p := make([]byte, 0, min(n, 512))
	for range n {
		c, err := d.param()
		if err != nil {
			return nil, err
		}
		p = append(p, c)
	}
	return p, nil
}

// unknown reads n more bytes of a command and emits it all as Unknown.
func (d *Decoder) unknown(head []byte, n int) error {
	p, err := d.params(n)
	if err != nil {
		return err
	}
	d.emit(Unknown{Bytes: append(append([]byte(nil), head...), p...)})
	return nil
}

// step reads one byte and whatever command it starts.
func (d *Decoder) step() error {
	c, err := d.readByte()
	if err != nil {
		return err
	}
	switch c {
	case lf:
		d.flush(true)
	case '\r':
		// Ignored: serial printers print on LF alone.
	case '\t':
		d.text(' ')
	case esc:
		return d.escape()
	case gs:
		return d.group()
	case fs:
		return d.kanji()
	case dle:
		return d.realTime()
	default:
		if c < 0x20 || c == 0x7F {
			d.emit(Unknown{Bytes: []byte{c}})
			return nil
		}
		d.text(c)
	}
	return nil
}

// text adds a byte of text to the line.
func (d *Decoder) text(c byte) {
	if n := len(d.line); n == 0 || d.line[n-1].st != d.st {
		d.line = append(d.line, rawSpan{st: d.st})
	}
	last := &d.line[len(d.line)-1]
	last.raw = append(last.raw, c)
	d.n++
	d.mb = gbNext(d.mb, c, d.st.chinese)
	// A line too long is cut, but never inside a character.
	if d.n >= MaxLine && d.mb == 0 {
		d.flush(false)
	}
}

// gbNext tracks where GB18030 characters end: given how many bytes of the
// current character were still to come (-1: its second byte, which says
// whether it has 2 or 4), it returns how many are after c.
func gbNext(mb int, c byte, chinese bool) int {
	switch {
	case !chinese:
		return 0
	case mb == 0 && c >= 0x81 && c <= 0xFE:
		return -1
	case mb == -1 && c >= 0x30 && c <= 0x39:
		return 2
	case mb > 0:
		return mb - 1
	}
	return 0
}

// atLineStart: no text waits for a line feed.
func (d *Decoder) atLineStart() bool { return d.n == 0 }

// flush prints the line waiting, or a blank line when there is none and
// blank is set.
func (d *Decoder) flush(blank bool) {
	if d.n == 0 {
		if blank {
			d.emit(Line{Align: d.st.align})
		}
		return
	}
	l := Line{Align: d.line[0].st.align}
	for _, rs := range d.line {
		s := Span{Text: decodeText(rs.raw, rs.st.chinese), Bold: rs.st.bold, Width: rs.st.w, Height: rs.st.h}
		if n := len(l.Spans); n > 0 {
			if p := &l.Spans[n-1]; p.Bold == s.Bold && p.Width == s.Width && p.Height == s.Height {
				p.Text += s.Text
				continue
			}
		}
		l.Spans = append(l.Spans, s)
	}
	d.line, d.n, d.mb = nil, 0, 0
	d.emit(l)
}

var (
	gb18030 = simplifiedchinese.GB18030
	cp437   = charmap.CodePage437
)

// decodeText turns printed bytes into UTF-8: GB18030 in Chinese mode,
// code page 437 outside it. Bytes that do not decode become U+FFFD.
func decodeText(raw []byte, chinese bool) string {
	var out []byte
	var err error
	if chinese {
		out, err = gb18030.NewDecoder().Bytes(raw)
	} else {
		out, err = cp437.NewDecoder().Bytes(raw)
	}
	if err != nil || !utf8.Valid(out) {
		return string(bytes.ToValidUTF8(out, []byte("\uFFFD")))
	}
	return string(out)
}

// escParams is how many parameter bytes the ESC commands the decoder
// skips take.
var escParams = map[byte]int{
	' ':  1, // right-side character spacing
	'$':  2, // absolute print position
	'%':  1, // user-defined characters on/off
	'-':  1, // underline
	'2':  0, // default line spacing
	'3':  1, // line spacing
	'<':  0, // return home
	'=':  1, // select peripheral device
	'?':  1, // cancel user-defined character
	'G':  1, // double-strike
	'K':  1, // print and reverse feed n dots
	'L':  0, // page mode
	'M':  1, // character font
	'R':  1, // international character set
	'S':  0, // standard mode
	'T':  1, // print direction in page mode
	'U':  1, // unidirectional printing
	'V':  1, // 90° rotation
	'W':  8, // print area in page mode
	'\\': 2, // relative print position
	'e':  1, // print and reverse feed n lines
	'p':  3, // drawer kick pulse
	'r':  1, // print colour
	't':  1, // character code table
	'u':  1, // transmit peripheral status (old)
	'v':  0, // transmit paper sensor status (old)
	'{':  1, // upside-down printing
	'c':  2, // ESC c 3/4/5 n: paper sensors, panel buttons
}

// escape reads an ESC command.
func (d *Decoder) escape() error {
	x, err := d.param()
	if err != nil {
		return err
	}
	switch x {
	case '@':
		d.reset()
	case 'a':
		n, err := d.param()
		if err != nil {
			return err
		}
		a, ok := alignOf(n)
		switch {
		case !ok:
			d.emit(Unknown{Bytes: []byte{esc, x, n}})
		case d.atLineStart():
			d.st.align = a
		}
		// Mid-line, a printer ignores it.
	case 'E':
		n, err := d.param()
		if err != nil {
			return err
		}
		d.st.bold = n&1 != 0
	case '!':
		n, err := d.param()
		if err != nil {
			return err
		}
		// Print mode: bit 3 emphasised, bit 4 double height, bit 5 double
		// width (bit 0 font B and bit 7 underline are not shown).
		d.st.bold = n&0x08 != 0
		d.st.w, d.st.h = 1+int(n>>5&1), 1+int(n>>4&1)
	case 'd':
		n, err := d.param()
		if err != nil {
			return err
		}
		feeds := int(n)
		if !d.atLineStart() {
			d.flush(false)
			feeds--
		}
		for range feeds {
			d.flush(true)
		}
	case 'J':
		if _, err := d.param(); err != nil {
			return err
		}
		d.flush(false)
	case 'i', 'm':
		// The old cut commands: partial cuts on the printers that have them.
		d.flush(false)
		d.emit(Cut{Mode: PartialCut})
	case '*':
		// Bit image: m nL nH, then n columns of 1 (8-dot) or 3 (24-dot)
		// bytes.
		p, err := d.params(3)
		if err != nil {
			return err
		}
		n := int(p[1]) | int(p[2])<<8
		if p[0] == 32 || p[0] == 33 {
			n *= 3
		}
		return d.unknown(append([]byte{esc, x}, p...), n)
	case 'D':
		// Tab positions: up to 32, ended by NUL.
		head := []byte{esc, x}
		for range 33 {
			c, err := d.param()
			if err != nil {
				return err
			}
			head = append(head, c)
			if c == 0 {
				break
			}
		}
		d.emit(Unknown{Bytes: head})
	default:
		n, ok := escParams[x]
		if !ok {
			d.emit(Unknown{Bytes: []byte{esc, x}})
			return nil
		}
		return d.unknown([]byte{esc, x}, n)
	}
	return nil
}

func alignOf(n byte) (Align, bool) {
	switch n {
	case 0, '0':
		return Left, true
	case 1, '1':
		return Center, true
	case 2, '2':
		return Right, true
	}
	return 0, false
}

// gsParams is how many parameter bytes the GS commands the decoder skips
// take.
var gsParams = map[byte]int{
	'$':  2, // absolute vertical position in page mode
	'/':  1, // print downloaded bit image
	':':  0, // start/end macro
	'B':  1, // reverse printing
	'H':  1, // barcode HRI position
	'I':  1, // transmit printer ID
	'L':  2, // left margin
	'P':  2, // motion units
	'T':  1, // beginning of the line
	'W':  2, // print area width
	'\\': 2, // relative vertical position in page mode
	'^':  3, // execute macro
	'a':  1, // automatic status back
	'b':  1, // smoothing
	'f':  1, // HRI font
	'h':  1, // barcode height
	'r':  1, // transmit status
	'w':  1, // barcode width
}

// group reads a GS command.
func (d *Decoder) group() error {
	x, err := d.param()
	if err != nil {
		return err
	}
	switch x {
	case '!':
		n, err := d.param()
		if err != nil {
			return err
		}
		w, h := int(n>>4&7)+1, int(n&7)+1
		if n&0x88 != 0 {
			d.emit(Unknown{Bytes: []byte{gs, x, n}})
			return nil
		}
		d.st.w, d.st.h = w, h
	case 'V':
		return d.cut()
	case '(':
		return d.extended()
	case 'k':
		return d.barcode()
	case 'v':
		// Raster image GS v 0 m xL xH yL yH, then x·y bytes.
		p, err := d.params(6)
		if err != nil {
			return err
		}
		x, y := int(p[2])|int(p[3])<<8, int(p[4])|int(p[5])<<8
		return d.unknown(append([]byte{gs, 'v'}, p...), x*y)
	case '*':
		// Download bit image GS * x y, then x·y·8 bytes.
		p, err := d.params(2)
		if err != nil {
			return err
		}
		return d.unknown(append([]byte{gs, '*'}, p...), int(p[0])*int(p[1])*8)
	default:
		n, ok := gsParams[x]
		if !ok {
			d.emit(Unknown{Bytes: []byte{gs, x}})
			return nil
		}
		return d.unknown([]byte{gs, x}, n)
	}
	return nil
}

// cut reads GS V m [n]; the line waiting is printed first.
func (d *Decoder) cut() error {
	m, err := d.param()
	if err != nil {
		return err
	}
	var mode CutMode
	switch m {
	case 0, '0':
		mode = FullCut
	case 1, '1':
		mode = PartialCut
	case 'A', 'a', 'g': // 65, 97, 103: feed n, full cut
		if _, err := d.param(); err != nil {
			return err
		}
		mode = FullCut
	case 'B', 'b', 'h': // 66, 98, 104: feed n, partial cut
		if _, err := d.param(); err != nil {
			return err
		}
		mode = PartialCut
	default:
		d.emit(Unknown{Bytes: []byte{gs, 'V', m}})
		return nil
	}
	d.flush(false)
	d.emit(Cut{Mode: mode})
	return nil
}

// barcode reads GS k m: for m 0–6 data ended by NUL, for m 65–79 a length
// and the data. Barcodes are not decoded.
func (d *Decoder) barcode() error {
	m, err := d.param()
	if err != nil {
		return err
	}
	head := []byte{gs, 'k', m}
	switch {
	case m <= 6:
		for range 256 {
			c, err := d.param()
			if err != nil {
				return err
			}
			head = append(head, c)
			if c == 0 {
				break
			}
		}
		d.emit(Unknown{Bytes: head})
		return nil
	case m >= 65 && m <= 79:
		n, err := d.param()
		if err != nil {
			return err
		}
		return d.unknown(append(head, n), int(n))
	}
	d.emit(Unknown{Bytes: head})
	return nil
}

// QR code functions of GS ( k with cn 49.
const (
	qrModel  = 'A' // 65
	qrModule = 'C' // 67
	qrLevel  = 'E' // 69
	qrStore  = 'P' // 80
	qrPrint  = 'Q' // 81
)

// extended reads GS ( fn pL pH and its pL + 256·pH bytes of parameters.
func (d *Decoder) extended() error {
	p, err := d.params(3)
	if err != nil {
		return err
	}
	fn, n := p[0], int(p[1])|int(p[2])<<8
	body, err := d.params(n)
	if err != nil {
		return err
	}
	raw := func() Unknown {
		return Unknown{Bytes: append(append([]byte{gs, '('}, p...), body...)}
	}
	if fn != 'k' || n < 2 || body[0] != '1' {
		d.emit(raw())
		return nil
	}
	arg := body[2:]
	ok := false
	switch body[1] {
	case qrModel:
		if len(arg) == 2 && arg[0] >= '1' && arg[0] <= '3' && arg[1] == 0 {
			d.qr.model, ok = int(arg[0]-'0'), true
		}
	case qrModule:
		if len(arg) == 1 && arg[0] >= 1 && arg[0] <= MaxQRModule {
			d.qr.module, ok = int(arg[0]), true
		}
	case qrLevel:
		if len(arg) == 1 && QRLevel(arg[0]) >= QRLevelL && QRLevel(arg[0]) <= QRLevelH {
			d.qr.level, ok = QRLevel(arg[0]), true
		}
	case qrStore:
		if len(arg) >= 2 && len(arg)-1 <= MaxQRData && arg[0] == '0' {
			d.qr.data, ok = append([]byte(nil), arg[1:]...), true
		}
	case qrPrint:
		if len(arg) == 1 && arg[0] == '0' {
			ok = true
			if d.qr.data != nil {
				d.flush(false)
				d.emit(QR{
					Data:   append([]byte(nil), d.qr.data...),
					Align:  d.st.align,
					Model:  d.qr.model,
					Module: d.qr.module,
					Level:  d.qr.level,
				})
			}
		}
	}
	if !ok {
		d.emit(raw())
	}
	return nil
}

// kanji reads an FS command.
func (d *Decoder) kanji() error {
	x, err := d.param()
	if err != nil {
		return err
	}
	switch x {
	case '&':
		d.st.chinese = true
	case '.':
		d.st.chinese = false
	case '!', '-', 'C', 'W': // Kanji print mode, underline, code system, quadruple size
		return d.unknown([]byte{fs, x}, 1)
	case 'S', 'p': // Kanji spacing; print NV bit image
		return d.unknown([]byte{fs, x}, 2)
	case '2': // define a user Kanji: c1 c2 and 72 bytes
		return d.unknown([]byte{fs, x}, 74)
	default:
		d.emit(Unknown{Bytes: []byte{fs, x}})
	}
	return nil
}

// realTime reads a DLE command. A DLE that starts none is a stray byte:
// what follows it is read again.
func (d *Decoder) realTime() error {
	x, err := d.param()
	if err != nil {
		return err
	}
	switch x {
	case eot:
		n, err := d.param()
		if err != nil {
			return err
		}
		if n == 7 || n == 8 { // extended status: one more byte
			if _, err := d.param(); err != nil {
				return err
			}
		}
		d.emit(Query{N: n})
	case 0x05: // ENQ n: real-time request
		return d.unknown([]byte{dle, x}, 1)
	case 0x14: // DC4 fn a b: drawer pulse, power off, clear buffers
		return d.unknown([]byte{dle, x}, 3)
	default:
		d.emit(Unknown{Bytes: []byte{dle}})
		d.back = int(x)
	}
	return nil
}
