package escpos

import (
	"errors"
	"fmt"
)

// The real-time status queries (DLE EOT n). Each is answered by one status
// byte as soon as it reaches the printer, even in the middle of a job, with
// the cover open or out of paper.
const (
	// QueryPrinter asks whether the printer is online, and the level of
	// the drawer kick connector.
	QueryPrinter byte = 1
	// QueryOffline asks why it is offline: cover open, feed button, paper
	// end, error.
	QueryOffline byte = 2
	// QueryError asks which error occurred: cutter, unrecoverable,
	// recoverable.
	QueryError byte = 3
	// QueryPaper asks the roll paper sensors: near end, end.
	QueryPaper byte = 4
)

// StatusQuery returns DLE EOT n.
func StatusQuery(n byte) []byte { return []byte{dle, eot, n} }

// Errors about the printer's state. Print wraps the ones that apply in an
// *Error; Status.Ready returns them joined.
var (
	// ErrNotStatus: a byte that answered a status query is not a status
	// byte (its fixed bits are wrong): line noise, another device, a
	// printer that does not speak ESC/POS, or the wrong baud rate.
	ErrNotStatus = errors.New("not a status byte")
	// ErrCoverOpen: the printer's cover is open.
	ErrCoverOpen = errors.New("cover open")
	// ErrPaperOut: the paper roll has run out (or is not loaded).
	ErrPaperOut = errors.New("paper out")
	// ErrOffline: the printer is offline for another reason: the paper is
	// being fed by the FEED button, or an error occurred (a jammed cutter,
	// an overheated head).
	ErrOffline = errors.New("printer offline")
)

// Status is what the printer answered to the real-time status queries.
// Fields of a query that was not asked stay false.
type Status struct {
	// QueryPrinter.
	Offline    bool // the printer prints nothing until it is back online
	DrawerHigh bool // drawer kick connector pin 3 is high

	// QueryOffline.
	CoverOpen    bool
	FeedButton   bool // the paper is being fed by the FEED button
	PaperStopped bool // printing stopped because the paper ran out
	Error        bool // an error occurred: QueryError says which

	// QueryError.
	CutterError   bool // the autocutter jammed or failed
	Unrecoverable bool // the printer must be switched off and repaired
	AutoRecover   bool // e.g. the head overheated: it resumes by itself

	// QueryPaper.
	PaperNearEnd bool // the roll is nearly used up: change it soon
	PaperOut     bool // no paper at the print head
}

// Status bit masks. Every status byte has bit 1 and bit 4 set, bits 0 and
// 7 clear: that is how an answer is told from noise.
const (
	fixedMask = 0x93
	fixedBits = 0x12

	bitDrawer    = 0x04 // QueryPrinter
	bitOffline   = 0x08 // QueryPrinter
	bitCover     = 0x04 // QueryOffline
	bitFeed      = 0x08 // QueryOffline
	bitPaperStop = 0x20 // QueryOffline
	bitError     = 0x40 // QueryOffline
	bitCutter    = 0x08 // QueryError
	bitUnrecov   = 0x20 // QueryError
	bitAutoRecov = 0x40 // QueryError
	bitsNearEnd  = 0x0C // QueryPaper: both set, but either counts
	bitsPaperEnd = 0x60 // QueryPaper: both set, but either counts
)

// ParseStatus reads b, the answer to DLE EOT n, into the fields that query
// reports. A byte with the wrong fixed bits is an error wrapping
// ErrNotStatus.
func ParseStatus(n, b byte) (Status, error) {
	if n < QueryPrinter || n > QueryPaper {
		return Status{}, fmt.Errorf("escpos: no status query %d", n)
	}
	if b&fixedMask != fixedBits {
		return Status{}, fmt.Errorf("escpos: answer 0x%02X to status query %d: %w", b, n, ErrNotStatus)
	}
	var s Status
	switch n {
	case QueryPrinter:
		s.DrawerHigh = b&bitDrawer != 0
		s.Offline = b&bitOffline != 0
	case QueryOffline:
		s.CoverOpen = b&bitCover != 0
		s.FeedButton = b&bitFeed != 0
		s.PaperStopped = b&bitPaperStop != 0
		s.Error = b&bitError != 0
	case QueryError:
		s.CutterError = b&bitCutter != 0
		s.Unrecoverable = b&bitUnrecov != 0
		s.AutoRecover = b&bitAutoRecov != 0
	case QueryPaper:
		s.PaperNearEnd = b&bitsNearEnd != 0
		s.PaperOut = b&bitsPaperEnd != 0
	}
	return s, nil
}

// merge adds the fields t reports.
func (s Status) merge(t Status) Status {
	s.Offline = s.Offline || t.Offline
	s.DrawerHigh = s.DrawerHigh || t.DrawerHigh
	s.CoverOpen = s.CoverOpen || t.CoverOpen
	s.FeedButton = s.FeedButton || t.FeedButton
	s.PaperStopped = s.PaperStopped || t.PaperStopped
	s.Error = s.Error || t.Error
	s.CutterError = s.CutterError || t.CutterError
	s.Unrecoverable = s.Unrecoverable || t.Unrecoverable
	s.AutoRecover = s.AutoRecover || t.AutoRecover
	s.PaperNearEnd = s.PaperNearEnd || t.PaperNearEnd
	s.PaperOut = s.PaperOut || t.PaperOut
	return s
}

// Ready returns nil when a job sent now would print, otherwise why not:
// ErrCoverOpen, ErrPaperOut and ErrOffline, joined, each that applies (a
// near-end roll still prints).
func (s Status) Ready() error {
	var errs []error
	if s.CoverOpen {
		errs = append(errs, ErrCoverOpen)
	}
	if s.PaperOut || s.PaperStopped {
		errs = append(errs, ErrPaperOut)
	}
	if len(errs) == 0 && (s.Offline || s.Error || s.FeedButton) {
		errs = append(errs, ErrOffline)
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return reasons(errs)
}

// reasons are several reasons at once, each one found by errors.Is.
type reasons []error

func (r reasons) Error() string {
	msg := r[0].Error()
	for _, e := range r[1:] {
		msg += "; " + e.Error()
	}
	return msg
}

func (r reasons) Unwrap() []error { return r }

// String lists the conditions reported, "ok" when none.
func (s Status) String() string {
	var out []byte
	add := func(on bool, what string) {
		if !on {
			return
		}
		if len(out) > 0 {
			out = append(out, ", "...)
		}
		out = append(out, what...)
	}
	add(s.Offline, "offline")
	add(s.CoverOpen, "cover open")
	add(s.PaperOut, "paper out")
	add(s.PaperStopped && !s.PaperOut, "stopped at paper end")
	add(s.PaperNearEnd && !s.PaperOut, "paper near end")
	add(s.FeedButton, "feeding")
	add(s.CutterError, "cutter error")
	add(s.Unrecoverable, "unrecoverable error")
	add(s.AutoRecover, "recoverable error")
	add(s.Error && !s.CutterError && !s.Unrecoverable && !s.AutoRecover, "error")
	add(s.DrawerHigh, "drawer pin high")
	if len(out) == 0 {
		return "ok"
	}
	return string(out)
}
