package escpos

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Command bytes.
const (
	esc = 0x1B
	gs  = 0x1D
	fs  = 0x1C
	dle = 0x10
	eot = 0x04
	lf  = 0x0A
)

// Align is a line's justification (ESC a).
type Align byte

// The justifications.
const (
	Left Align = iota
	Center
	Right
)

func (a Align) String() string {
	switch a {
	case Left:
		return "left"
	case Center:
		return "center"
	case Right:
		return "right"
	}
	return fmt.Sprintf("align(%d)", byte(a))
}

// QRLevel is a QR code's error correction level, as GS ( k function 69
// numbers it.
type QRLevel byte

// The error correction levels: about 7, 15, 25 and 30 % of the symbol can
// be restored.
const (
	QRLevelL QRLevel = 48 + iota
	QRLevelM
	QRLevelQ
	QRLevelH
)

func (l QRLevel) String() string {
	if l >= QRLevelL && l <= QRLevelH {
		return string("LMQH"[l-QRLevelL])
	}
	return fmt.Sprintf("level(%d)", byte(l))
}

// CutMode is how the cutter cuts (GS V).
type CutMode byte

// The cuts. A partial cut leaves a point uncut, so the receipt hangs until
// it is torn off; printers without one cut fully.
const (
	FullCut CutMode = iota
	PartialCut
)

func (m CutMode) String() string {
	switch m {
	case FullCut:
		return "full"
	case PartialCut:
		return "partial"
	}
	return fmt.Sprintf("cut(%d)", byte(m))
}

// Limits of the commands.
const (
	// MaxSize is the largest character width or height multiplier (GS !).
	MaxSize = 8
	// MaxQRModule is the largest QR module size in dots (GS ( k fn 67).
	MaxQRModule = 16
	// MaxQRData is the most data one QR symbol stores (GS ( k fn 80).
	MaxQRData = 7089
)

// Builder encodes a print job. Its methods append commands and return the
// Builder, so calls chain; the first invalid argument is kept as the error
// Bytes returns, and later calls append nothing. The zero value is ready to
// use; a job normally starts with Init.
type Builder struct {
	buf     []byte
	chinese bool // FS & sent since the last ESC @
	err     error
}

// Init appends ESC @: the printer clears its print buffer and returns to
// its power-on settings (left, not bold, normal size, Chinese mode off).
func (b *Builder) Init() *Builder {
	if b.err == nil {
		b.chinese = false
	}
	return b.add(esc, '@')
}

// Align appends ESC a n. Printers apply it only at the beginning of a line.
func (b *Builder) Align(a Align) *Builder {
	if a > Right {
		return b.fail(fmt.Errorf("escpos: no alignment %d", a))
	}
	return b.add(esc, 'a', byte(a))
}

// Bold appends ESC E n.
func (b *Builder) Bold(on bool) *Builder {
	n := byte(0)
	if on {
		n = 1
	}
	return b.add(esc, 'E', n)
}

// Size appends GS ! n: characters width and height times as wide and tall
// as normal, each 1 to MaxSize.
func (b *Builder) Size(width, height int) *Builder {
	if width < 1 || width > MaxSize || height < 1 || height > MaxSize {
		return b.fail(fmt.Errorf("escpos: character size %d×%d (each must be 1–%d)", width, height, MaxSize))
	}
	return b.add(gs, '!', byte(width-1)<<4|byte(height-1))
}

// Text appends s for printing. ASCII goes as it is; anything else is
// encoded in GB18030, after FS & if the printer is not yet in Chinese mode.
// "\n" ends the line (LF) and "\t" becomes a space. Any other character
// that is not graphic (a control, a format character, private use,
// unassigned) becomes "?", so that no text can slip a command to the
// printer.
//
// Printer fonts hold GB2312 or GBK: characters GB18030 encodes in four
// bytes (¥ U+00A5 among them; use ￥ U+FFE5) print as blanks or garbage.
func (b *Builder) Text(s string) *Builder {
	if b.err != nil {
		return b
	}
	for len(s) > 0 {
		// The longest run of ASCII, then the longest run of the rest.
		i := strings.IndexFunc(s, func(r rune) bool { return r >= utf8.RuneSelf })
		if i < 0 {
			i = len(s)
		}
		for _, c := range []byte(s[:i]) {
			switch {
			case c == '\n': // LF: the line ends
			case c == '\t':
				c = ' '
			case c < 0x20 || c == 0x7F:
				c = '?'
			}
			b.buf = append(b.buf, c)
		}
		s = s[i:]
		j := strings.IndexFunc(s, func(r rune) bool { return r < utf8.RuneSelf })
		if j < 0 {
			j = len(s)
		}
		if j > 0 {
			b.gb(s[:j])
			s = s[j:]
		}
	}
	return b
}

// gb appends a run of non-ASCII text in GB18030, in Chinese mode.
func (b *Builder) gb(s string) {
	if !b.chinese {
		b.buf = append(b.buf, fs, '&')
		b.chinese = true
	}
	enc := simplifiedchinese.GB18030.NewEncoder()
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			b.buf = append(b.buf, '?')
			continue
		}
		out, err := enc.Bytes([]byte(string(r)))
		if err != nil {
			out = []byte{'?'}
		}
		b.buf = append(b.buf, out...)
	}
}

// Line appends s and LF.
func (b *Builder) Line(s string) *Builder { return b.Text(s).LF() }

// LF appends a line feed: the line is printed.
func (b *Builder) LF() *Builder { return b.add(lf) }

// Feed appends ESC d n: the line is printed and the paper fed n lines
// (0–255).
func (b *Builder) Feed(lines int) *Builder {
	if lines < 0 || lines > 255 {
		return b.fail(fmt.Errorf("escpos: feed %d lines (0–255)", lines))
	}
	return b.add(esc, 'd', byte(lines))
}

// QR appends a model 2 QR code of data with modules of module dots (1–16)
// at error correction level: select the model, set the module size and the
// level, store the data, print it. It prints where the current line
// starts, aligned as the line would be. How much data fits depends on the
// level: at most 2953 bytes of text at level L, fewer at higher levels.
//
// Data holding DLE EOT (10 04) is refused: a printer would take it for a
// status query and answer it.
func (b *Builder) QR(data string, module int, level QRLevel) *Builder {
	switch {
	case len(data) == 0 || len(data) > MaxQRData:
		return b.fail(fmt.Errorf("escpos: QR code of %d bytes (1–%d)", len(data), MaxQRData))
	case strings.Contains(data, "\x10\x04"):
		return b.fail(fmt.Errorf("escpos: QR data holds DLE EOT (10 04), which the printer would answer as a status query"))
	case module < 1 || module > MaxQRModule:
		return b.fail(fmt.Errorf("escpos: QR module size %d (1–%d)", module, MaxQRModule))
	case level < QRLevelL || level > QRLevelH:
		return b.fail(fmt.Errorf("escpos: QR error correction level %d (48–51)", level))
	}
	n := len(data) + 3
	b.add(gs, '(', 'k', 4, 0, '1', 'A', '2', 0) // model 2
	b.add(gs, '(', 'k', 3, 0, '1', 'C', byte(module))
	b.add(gs, '(', 'k', 3, 0, '1', 'E', byte(level))
	b.add(gs, '(', 'k', byte(n), byte(n>>8), '1', 'P', '0')
	b.add([]byte(data)...)
	return b.add(gs, '(', 'k', 3, 0, '1', 'Q', '0')
}

// Cut appends GS V 65/66 0: feed the paper to the cutter, then cut.
func (b *Builder) Cut(mode CutMode) *Builder {
	if mode > PartialCut {
		return b.fail(fmt.Errorf("escpos: no cut mode %d", mode))
	}
	return b.add(gs, 'V', 'A'+byte(mode), 0)
}

// Bytes returns the job, or the error of the first invalid call.
func (b *Builder) Bytes() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	return append([]byte(nil), b.buf...), nil
}

func (b *Builder) add(c ...byte) *Builder {
	if b.err == nil {
		b.buf = append(b.buf, c...)
	}
	return b
}

func (b *Builder) fail(err error) *Builder {
	if b.err == nil {
		b.err = err
	}
	return b
}
