package printersim

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"onecard/devices/escpos"
)

// Receipt is what the printer printed between two cuts.
type Receipt struct {
	// N numbers the receipts from 1, continuing after those in Dir.
	N int
	// Blocks are the lines, QR codes and the cut, in order.
	Blocks []escpos.Block
	// Text is the text rendering (RenderText), as in the .txt file.
	Text string
	// TextPath and ImagePath are the files written, "" without Dir or
	// when writing failed (the error is logged).
	TextPath, ImagePath string
}

var receiptName = regexp.MustCompile(`^receipt-(\d+)\.txt$`)

// openDir creates Dir and, the first time, numbers the receipts after the
// last one there.
func (s *Sim) openDir() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next > 0 {
		return nil
	}
	s.next = 1
	if s.opt.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(s.opt.Dir, 0o755); err != nil {
		return fmt.Errorf("printersim: %w", err)
	}
	entries, err := os.ReadDir(s.opt.Dir)
	if err != nil {
		return fmt.Errorf("printersim: %w", err)
	}
	for _, e := range entries {
		if m := receiptName.FindStringSubmatch(e.Name()); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil && n >= s.next {
				s.next = n + 1
			}
		}
	}
	return nil
}

// cut ends a receipt: it is rendered, written and kept.
func (s *Sim) cut(blocks []escpos.Block) {
	s.mu.Lock()
	n := s.next
	s.next++
	s.mu.Unlock()

	cols := s.opt.Dots / cellDots
	r := Receipt{N: n, Blocks: blocks, Text: RenderText(blocks, cols)}
	if s.opt.Dir != "" {
		base := filepath.Join(s.opt.Dir, fmt.Sprintf("receipt-%04d", n))
		// The image first: the text file's arrival says the receipt is
		// complete.
		var img bytes.Buffer
		err := png.Encode(&img, RenderImage(blocks, s.opt.Dots))
		if err == nil {
			err = writeFile(base+".png", img.Bytes())
		}
		if err == nil {
			r.ImagePath = base + ".png"
			err = writeFile(base+".txt", []byte(r.Text))
		}
		if err == nil {
			r.TextPath = base + ".txt"
		} else {
			s.log.Error("printersim: receipt not written", "n", n, "err", err)
		}
	}
	s.log.Info("printersim: receipt printed", "n", n, "lines", len(blocks)-1, "file", r.TextPath)

	s.mu.Lock()
	s.receipts = append(s.receipts, r)
	close(s.printed)
	s.printed = make(chan struct{})
	s.mu.Unlock()
}

// writeFile writes a file whole or not at all, so that a reader never
// sees half of it.
func writeFile(path string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
