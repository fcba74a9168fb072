package printersim

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"

	"onecard/devices/escpos"
)

// A character of Font A is 12 × 24 dots in a row 32 dots high (line
// spacing included); a Chinese character takes two columns.
const (
	cellDots = 12
	rowDots  = 32
)

// cell is one printed character.
type cell struct {
	r    rune
	bold bool
	w, h int
}

// cols is how many columns the character takes on paper.
func (c cell) cols() int { return runeCols(c.r) * c.w }

// runeCols is how many columns a character takes at normal size: ASCII
// and narrow forms one, the rest two (in Chinese mode a printer prints
// every two-byte GB character full width, ·, × and “ included).
func runeCols(r rune) int {
	if r < utf8.RuneSelf {
		return 1
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianHalfwidth, width.EastAsianNarrow:
		return 1
	}
	return 2
}

// rows cuts a line into the rows a printer cols columns wide prints: one,
// or more when the text reaches the paper's edge.
func rows(l escpos.Line, cols int) [][]cell {
	var out [][]cell
	var row []cell
	used := 0
	for _, s := range l.Spans {
		for _, r := range s.Text {
			c := cell{r: r, bold: s.Bold, w: s.Width, h: s.Height}
			if n := c.cols(); used+n > cols && len(row) > 0 {
				out = append(out, row)
				row, used = nil, 0
			}
			row = append(row, c)
			used += c.cols()
		}
	}
	if len(row) > 0 || len(out) == 0 {
		out = append(out, row)
	}
	return out
}

// indent is how many columns an aligned row of used columns starts in.
func indent(a escpos.Align, used, cols int) int {
	switch {
	case used >= cols:
		return 0
	case a == escpos.Center:
		return (cols - used) / 2
	case a == escpos.Right:
		return cols - used
	}
	return 0
}

// RenderText renders printed blocks as text, one line a printed row, cols
// columns wide (48 on 80 mm paper): alignment as leading spaces (a Chinese
// character counts two columns, times its width), bold as **text**, a size
// other than 1×1 as {WxH text}, a QR code as [QR: payload] (Go-quoted
// unless it is printable UTF-8), and a cut as a dashed line naming it.
// Trailing spaces are trimmed.
func RenderText(blocks []escpos.Block, cols int) string {
	var b strings.Builder
	line := func(s string) {
		b.WriteString(strings.TrimRight(s, " "))
		b.WriteByte('\n')
	}
	for _, blk := range blocks {
		switch blk := blk.(type) {
		case escpos.Line:
			for _, row := range rows(blk, cols) {
				line(textRow(row, blk.Align, cols))
			}
		case escpos.QR:
			s := "[QR: " + payload(blk.Data) + "]"
			used := 0
			for _, r := range s {
				used += runeCols(r)
			}
			line(strings.Repeat(" ", indent(blk.Align, used, cols)) + s)
		case escpos.Cut:
			label := " " + blk.Mode.String() + " cut "
			left := max(0, (cols-len(label))/2)
			right := max(0, cols-len(label)-left)
			line(strings.Repeat("-", left) + label + strings.Repeat("-", right))
		}
	}
	return b.String()
}

// textRow renders a row with its markup.
func textRow(row []cell, a escpos.Align, cols int) string {
	used := 0
	for _, c := range row {
		used += c.cols()
	}
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", indent(a, used, cols)))
	for i := 0; i < len(row); {
		j := i
		var run strings.Builder
		for ; j < len(row) && row[j].bold == row[i].bold && row[j].w == row[i].w && row[j].h == row[i].h; j++ {
			run.WriteRune(row[j].r)
		}
		t := run.String()
		if row[i].bold {
			t = "**" + t + "**"
		}
		if row[i].w != 1 || row[i].h != 1 {
			t = fmt.Sprintf("{%dx%d %s}", row[i].w, row[i].h, t)
		}
		b.WriteString(t)
		i = j
	}
	return b.String()
}

// payload shows QR data: as it is when it is printable UTF-8, else
// Go-quoted.
func payload(data []byte) string {
	s := string(data)
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
