// Package escpos drives an ESC/POS thermal receipt printer on a serial
// line: a Builder that encodes receipts (text in GB18030 under the
// printer's Chinese mode, alignment, bold, character size, QR codes, cuts),
// the real-time status query DLE EOT and its parser, a Printer that checks
// the status before every job, and a Decoder that turns a byte stream back
// into what the printer would print, for the simulator and for tests.
//
// It knows bytes, not business: what goes on a receipt is billing's
// concern. The codec is written here from the ESC/POS command reference;
// no ESC/POS library is used. docs/printer.md tells an operator how to
// connect a printer and what the status checks mean.
//
// # Commands
//
//	ESC @          1B 40            initialise
//	ESC a n        1B 61 n          justify: 0 left, 1 centre, 2 right (48–50 too)
//	ESC E n        1B 45 n          bold when bit 0 of n is set
//	GS ! n         1D 21 n          size: width (bits 4–6) and height (bits 0–2), each 1–8
//	FS & / FS .    1C 26 / 1C 2E    enter / leave Chinese mode (two-byte GB text)
//	LF             0A               print the line and feed
//	ESC d n        1B 64 n          print and feed n lines
//	GS ( k …       1D 28 6B pL pH … QR code: model, module size, error level, store, print
//	GS V m [n]     1D 56 …          cut: 0/48 full, 1/49 partial; 65/66 feed n, then full/partial
//	DLE EOT n      10 04 n          real-time status: 1 printer, 2 offline cause, 3 error cause, 4 paper
package escpos
