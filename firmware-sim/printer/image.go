package printersim

import (
	"image"
	"image/color"
	"unicode"

	"github.com/hajimehoshi/bitmapfont/v3"
	"github.com/skip2/go-qrcode"
	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"

	"onecard/devices/escpos"
)

// The font: a 12-pixel bitmap font with simplified Chinese glyphs (GB2312
// and more), embedded in the module, so that receipts render the same on
// any machine, with no font installed. Its glyphs sit in 6 × 16 (half
// width) and 12 × 16 (full width) cells with the baseline at 12; drawn at
// scale 2 they fill the printer's 12 × 32 and 24 × 32 dot cells. The East
// Asian variant draws ambiguous characters (·, ×, “) full width, as a
// printer in Chinese mode does.
var (
	face           font.Face = bitmapfont.FaceSCEA
	glyphH, glyphY           = 16, 12
	glyphScale               = 2
)

// Margins and gaps on paper, in dots. 80 mm paper is 640 dots wide at 203
// dpi, of which the head prints the middle 576.
const (
	sideMargin = 32
	topMargin  = 16
	qrGap      = 8
	cutGap     = 24
)

var (
	paperColor = color.Gray{Y: 0xFF}
	inkColor   = color.Gray{Y: 0x00}
)

// drawOp draws one printed thing at the top of what is left of the paper.
type drawOp struct {
	h    int
	draw func(img *image.Gray, y int)
}

// RenderImage draws printed blocks as the printer puts them on paper, its
// print area dots wide (576 for 80 mm) between margins of 32 dots: text in the embedded bitmap font, scaled by each
// span's size, bold drawn twice a dot apart, wrapped at the paper's edge;
// QR codes as real symbols (model 2, the block's error correction level,
// its module size, a 4-module quiet zone; a symbol too wide for the paper
// is drawn with smaller modules); the cut as a dashed line at the bottom.
// A character the font lacks is drawn as an empty box.
func RenderImage(blocks []escpos.Block, dots int) *image.Gray {
	var ops []drawOp
	for _, blk := range blocks {
		switch blk := blk.(type) {
		case escpos.Line:
			for _, row := range rows(blk, dots/cellDots) {
				ops = append(ops, textOp(row, blk.Align, dots))
			}
		case escpos.QR:
			ops = append(ops, qrOp(blk, dots))
		case escpos.Cut:
			ops = append(ops, cutOp(blk.Mode, dots))
		}
	}
	h := topMargin
	for _, op := range ops {
		h += op.h
	}
	img := image.NewGray(image.Rect(0, 0, dots+2*sideMargin, h))
	for i := range img.Pix {
		img.Pix[i] = paperColor.Y
	}
	area := img.SubImage(image.Rect(sideMargin, 0, sideMargin+dots, h)).(*image.Gray)
	y := topMargin
	for _, op := range ops {
		op.draw(area, y)
		y += op.h
	}
	return img
}

func fill(img *image.Gray, r image.Rectangle, c color.Gray) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetGray(x, y, c)
		}
	}
}

// textOp draws a row of characters, on a common baseline at the bottom of
// the row.
func textOp(row []cell, a escpos.Align, dots int) drawOp {
	used, tall := 0, 1
	for _, c := range row {
		used += c.cols()
		tall = max(tall, c.h)
	}
	h := rowDots * tall
	return drawOp{h: h, draw: func(img *image.Gray, y int) {
		x := img.Rect.Min.X + indent(a, used, dots/cellDots)*cellDots
		for _, c := range row {
			w := c.cols() * cellDots
			drawChar(img, c, image.Rect(x, y+h-rowDots*c.h, x+w, y+h))
			x += w
		}
	}}
}

// drawChar draws c scaled into its cell.
func drawChar(img *image.Gray, c cell, box image.Rectangle) {
	if unicode.IsSpace(c.r) {
		return
	}
	sx, sy := glyphScale*c.w, glyphScale*c.h
	_, mask, mp, adv, ok := face.Glyph(fixed.P(0, glyphY), c.r)
	inked := false
	if ok && mask != nil {
		gw := adv.Round()
		// A half-width glyph in a full-width cell is centred.
		off := box.Min.X + max(0, box.Dx()-gw*sx)/2
		for gy := range glyphH {
			for gx := range gw {
				if _, _, _, alpha := mask.At(mp.X+gx, mp.Y+gy).RGBA(); alpha == 0 {
					continue
				}
				inked = true
				px, py := off+gx*sx, box.Min.Y+gy*sy
				fill(img, image.Rect(px, py, px+sx, py+sy), inkColor)
				if c.bold {
					fill(img, image.Rect(px+1, py, px+sx+1, py+sy), inkColor)
				}
			}
		}
	}
	if !inked {
		// No glyph: an empty box, as a placeholder.
		r := box.Inset(2 * c.w)
		fill(img, image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+2), inkColor)
		fill(img, image.Rect(r.Min.X, r.Max.Y-2, r.Max.X, r.Max.Y), inkColor)
		fill(img, image.Rect(r.Min.X, r.Min.Y, r.Min.X+2, r.Max.Y), inkColor)
		fill(img, image.Rect(r.Max.X-2, r.Min.Y, r.Max.X, r.Max.Y), inkColor)
	}
}

// qrLevels maps ESC/POS error correction levels to the encoder's.
var qrLevels = map[escpos.QRLevel]qrcode.RecoveryLevel{
	escpos.QRLevelL: qrcode.Low,
	escpos.QRLevelM: qrcode.Medium,
	escpos.QRLevelQ: qrcode.High,
	escpos.QRLevelH: qrcode.Highest,
}

// qrOp draws a QR code, or, for data the encoder refuses, a row saying so.
func qrOp(q escpos.QR, dots int) drawOp {
	code, err := qrcode.New(string(q.Data), qrLevels[q.Level])
	if err != nil {
		return textOp(cells("[QR: "+err.Error()+"]"), q.Align, dots)
	}
	bm := code.Bitmap() // with its quiet zone
	m := q.Module
	if len(bm)*m > dots {
		m = max(1, dots/len(bm))
	}
	size := len(bm) * m
	return drawOp{h: size + qrGap, draw: func(img *image.Gray, y int) {
		x := img.Rect.Min.X
		switch q.Align {
		case escpos.Center:
			x += (dots - size) / 2
		case escpos.Right:
			x += dots - size
		}
		for r, line := range bm {
			for c, dark := range line {
				if dark {
					fill(img, image.Rect(x+c*m, y+r*m, x+(c+1)*m, y+(r+1)*m), inkColor)
				}
			}
		}
	}}
}

func cells(s string) []cell {
	var out []cell
	for _, r := range s {
		out = append(out, cell{r: r, w: 1, h: 1})
	}
	return out
}

// cutOp draws the cut: dashes for a partial cut, a line for a full one.
func cutOp(m escpos.CutMode, dots int) drawOp {
	return drawOp{h: cutGap, draw: func(img *image.Gray, y int) {
		y += cutGap - 2
		for x := img.Rect.Min.X; x < img.Rect.Max.X; x += 16 {
			w := 16
			if m == escpos.PartialCut {
				w = 10
			}
			fill(img, image.Rect(x, y, x+w, y+2), inkColor)
		}
	}}
}
