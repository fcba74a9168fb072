package printersim_test

import (
	"bytes"
	"image"
	"strings"
	"testing"

	"onecard/devices/escpos"
	printersim "onecard/firmware-sim/printer"
)

func TestRenderText(t *testing.T) {
	line := func(a escpos.Align, spans ...escpos.Span) escpos.Line { return escpos.Line{Align: a, Spans: spans} }
	sp := func(s string, bold bool, w, h int) escpos.Span {
		return escpos.Span{Text: s, Bold: bold, Width: w, Height: h}
	}
	for _, tc := range []struct {
		name  string
		block escpos.Block
		cols  int
		want  string
	}{
		{"blank", line(escpos.Center), 10, "\n"},
		{"right", line(escpos.Right, sp("ab", false, 1, 1)), 10, "        ab\n"},
		{"centre, odd", line(escpos.Center, sp("abc", false, 1, 1)), 10, "   abc\n"},
		{"Chinese counts two", line(escpos.Right, sp("收据", false, 1, 1)), 10, "      收据\n"},
		{"width counts", line(escpos.Center, sp("ab", true, 2, 1)), 10, "   {2x1 **ab**}\n"},
		{"styles", line(escpos.Left, sp("a", false, 1, 1), sp("b", true, 1, 1), sp("c", false, 1, 3)), 10, "a**b**{1x3 c}\n"},
		// A line reaching the edge goes on below; a wide character that
		// does not fit starts the next row.
		{"wrap", line(escpos.Left, sp("abcdefghi物业", false, 1, 1)), 10, "abcdefghi\n物业\n"},
		{"fills the row", line(escpos.Left, sp("abcdefgh物业", false, 1, 1)), 10, "abcdefgh物\n业\n"},
		{"wrap aligned", line(escpos.Center, sp("0123456789ab", false, 1, 1)), 10, "0123456789\n    ab\n"},
		{"QR", escpos.QR{Data: []byte("R-1"), Align: escpos.Right}, 12, "   [QR: R-1]\n"},
		{"QR binary", escpos.QR{Data: []byte{0xFF, 'a'}}, 12, `[QR: "\xffa"]` + "\n"},
		{"QR too wide", escpos.QR{Data: []byte("0123456789"), Align: escpos.Center}, 12, "[QR: 0123456789]\n"},
		{"cut", escpos.Cut{Mode: escpos.FullCut}, 16, "--- full cut ---\n"},
		{"not printed", escpos.Query{N: 1}, 10, ""},
	} {
		if got := printersim.RenderText([]escpos.Block{tc.block}, tc.cols); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// glyph renders one character alone.
func glyph(r string) *image.Gray {
	return printersim.RenderImage([]escpos.Block{escpos.Line{Spans: []escpos.Span{{Text: r, Width: 1, Height: 1}}}}, 576)
}

// Every character a receipt needs has a glyph in the embedded font, none
// of them the placeholder box drawn for a character the font lacks.
func TestFontCoversReceipts(t *testing.T) {
	box := glyph("\uE000") // private use: no glyph
	blank := glyph(" ")
	if bytes.Equal(box.Pix, blank.Pix) {
		t.Fatal("no placeholder box for a missing glyph")
	}
	chars := "物业收费收据号房合计大写零壹贰叁肆伍陆柒捌玖拾佰仟万亿元角分整￥现金微信支付宝银行卡收银员自助终端作废补打重印副本年月日时" +
		"阳光花园服务中心电话停车管理水电燃气押金维修基金滞纳金违约金退款签名·×：，。（）“”—" +
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-./:#*"
	for _, r := range chars {
		g := glyph(string(r))
		if bytes.Equal(g.Pix, box.Pix) || bytes.Equal(g.Pix, blank.Pix) {
			t.Errorf("%q has no glyph", r)
		}
	}
}

func TestRenderImageSizes(t *testing.T) {
	one := printersim.RenderImage([]escpos.Block{escpos.Line{Spans: []escpos.Span{{Text: "收", Width: 1, Height: 1}}}}, 576)
	big := printersim.RenderImage([]escpos.Block{escpos.Line{Spans: []escpos.Span{{Text: "收", Width: 3, Height: 2}}}}, 576)
	if d := big.Bounds().Dy() - one.Bounds().Dy(); d != 32 {
		t.Errorf("a double-height row is %d dots taller, want 32", d)
	}
	ink := func(img *image.Gray) (n int) {
		for _, p := range img.Pix {
			if p < 0x80 {
				n++
			}
		}
		return n
	}
	if a, b := ink(one), ink(big); b != 6*a {
		t.Errorf("3×2 glyph has %d inked dots, 1×1 %d: want 6 times as many", b, a)
	}
	// 58 mm paper: 384 dots between the margins.
	if w := printersim.RenderImage(nil, 384).Bounds().Dx(); w != 384+64 {
		t.Errorf("58 mm image %d wide", w)
	}
	if !strings.Contains(printersim.RenderText([]escpos.Block{escpos.Cut{}}, 32), "full cut") {
		t.Error("cut not rendered")
	}
}
