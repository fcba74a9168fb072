// Package scanner drives a barcode scanner on a serial line (RS-232, or
// USB in virtual COM / CDC-ACM mode): the scanner sends each code it reads
// as a line of text, and a Scanner hands the codes on, one Scan each, with
// the time its line ended.
//
// It knows bytes, not business: what a code means (a courier's tracking
// number, a gate pass) is the caller's concern. Normalize and
// ValidTracking are small pure helpers for the mail room's tracking
// numbers, kept here beside the bytes they come from. docs/scanner.md
// tells an operator how to set a scanner up.
//
// # Line
//
// A code ends with CR, LF or CR LF, whichever the scanner is set to send
// (its "suffix"); empty lines are skipped, so LF CR works too. With
// Opts.AIM, a leading AIM symbology identifier ("]" and two letters or
// digits, such as "]C0" for Code 128) is taken off the code and kept in
// Scan.Symbology.
//
// Lines a scanner would not send are rejected, each with an error that
// wraps ErrRejected, and reading goes on: a line longer than Opts.MaxLen
// bytes (ErrTooLong), one that is not UTF-8 (ErrEncoding), one with a
// control character (ErrControl), and the start of a line left without its
// end for Opts.LineGap (ErrUnterminated: line noise, or a scanner set to
// send no suffix). None of them can end a session: only the port failing
// or Close does.
package scanner
