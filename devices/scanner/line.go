package scanner

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrRejected is wrapped by every *LineError: a line was skipped, and the
// Scanner reads on. Log it and call Next again.
var ErrRejected = errors.New("line rejected")

// Why a line was rejected (LineError.Err).
var (
	// ErrTooLong: the line ran past Opts.MaxLen bytes; the bytes up to its
	// end were dropped.
	ErrTooLong = errors.New("line too long")
	// ErrEncoding: the line is not valid UTF-8 (line noise, or a speed that
	// does not match the scanner's).
	ErrEncoding = errors.New("not UTF-8")
	// ErrControl: the line holds a control character (line noise, or a
	// GS1 code whose FNC1 the scanner sends as GS).
	ErrControl = errors.New("control character")
	// ErrUnterminated: bytes came and then nothing for Opts.LineGap,
	// without a CR or LF (line noise, or a scanner set to send no suffix).
	ErrUnterminated = errors.New("no CR or LF after the line")
	// ErrEmpty: with Opts.AIM, a line that was only a symbology identifier.
	ErrEmpty = errors.New("no data after the symbology identifier")
	// ErrOverrun: lines came faster than Next took them and Opts.Queue was
	// full; LineError.Lost says how many were dropped.
	ErrOverrun = errors.New("lines lost: nobody was reading")
)

// maxHead is how much of a rejected line a LineError keeps for the log.
const maxHead = 32

// LineError is a line the Scanner rejected. It wraps ErrRejected and Err.
type LineError struct {
	// Err is why: ErrTooLong, ErrEncoding, ErrControl, ErrUnterminated,
	// ErrEmpty or ErrOverrun.
	Err error
	// Line holds the line's first bytes (at most 32), as received.
	Line []byte
	// Len is the line's length in bytes, terminator excluded.
	Len int
	// Offset, for ErrControl and ErrEncoding, is where in the line the
	// first bad byte is.
	Offset int
	// Lost, for ErrOverrun, is how many lines were dropped.
	Lost int
	// At is when the line ended (for ErrUnterminated, when its last byte
	// came).
	At time.Time
}

// Error reads "scanner: line rejected: <cause>: "<start of the line>" (<n>
// bytes)".
func (e *LineError) Error() string {
	msg := "scanner: " + ErrRejected.Error() + ": " + e.Err.Error()
	switch {
	case errors.Is(e.Err, ErrOverrun):
		return msg + " (" + strconv.Itoa(e.Lost) + ")"
	case errors.Is(e.Err, ErrControl), errors.Is(e.Err, ErrEncoding):
		msg += fmt.Sprintf(" at byte %d", e.Offset)
	}
	more := ""
	if e.Len > len(e.Line) {
		more = "…"
	}
	return msg + fmt.Sprintf(": %q%s (%d bytes)", e.Line, more, e.Len)
}

// Unwrap returns ErrRejected and the cause.
func (e *LineError) Unwrap() []error { return []error{ErrRejected, e.Err} }

// event is one line: a scan, or why it was rejected.
type event struct {
	scan Scan
	err  *LineError
}

// splitter cuts the byte stream into lines and checks each. It keeps at
// most maxLen bytes of a line, so no input can make it grow further.
type splitter struct {
	maxLen int
	aim    bool

	buf  []byte    // the line so far, its first maxLen bytes
	n    int       // the line's length so far; more than len(buf) when too long
	last time.Time // when its last byte came
}

// feed takes bytes that came at at, and calls emit for each line they end.
func (s *splitter) feed(b []byte, at time.Time, emit func(event)) {
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\r' && b[i] != '\n' {
			i++
		}
		if room := s.maxLen + 1 - len(s.buf); room > 0 {
			// One byte past maxLen is kept, so that a line one byte too
			// long is told from one that is not.
			s.buf = append(s.buf, b[:min(i, room)]...)
		}
		s.n += i
		if i > 0 {
			s.last = at
		}
		if i == len(b) {
			return
		}
		// b[i] ends the line; an empty one (the LF of CR LF) is skipped.
		if s.n > 0 {
			emit(s.line(at))
		}
		b = b[i+1:]
	}
}

// pending reports a line begun and not ended, and when its last byte came.
func (s *splitter) pending() (bool, time.Time) { return s.n > 0, s.last }

// flush rejects the line begun and not ended, if any.
func (s *splitter) flush(emit func(event)) {
	if s.n == 0 {
		return
	}
	emit(event{err: s.reject(ErrUnterminated, 0, s.last)})
}

// line checks the line in s.buf, ended at at, and starts the next.
func (s *splitter) line(at time.Time) event {
	if s.n > s.maxLen {
		return event{err: s.reject(ErrTooLong, 0, at)}
	}
	b := s.buf
	for off := 0; off < len(b); {
		r, size := utf8.DecodeRune(b[off:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return event{err: s.reject(ErrEncoding, off, at)}
		case unicode.IsControl(r):
			return event{err: s.reject(ErrControl, off, at)}
		}
		off += size
	}
	var sym string
	if s.aim && len(b) >= 3 && b[0] == ']' && alnum(b[1]) && alnum(b[2]) {
		sym, b = string(b[:3]), b[3:]
		if len(b) == 0 {
			return event{err: s.reject(ErrEmpty, 0, at)}
		}
	}
	ev := event{scan: Scan{Code: string(b), Symbology: sym, At: at}}
	s.reset()
	return ev
}

// reject makes the LineError for the line in s.buf and starts the next.
func (s *splitter) reject(why error, off int, at time.Time) *LineError {
	e := &LineError{
		Err:    why,
		Line:   append([]byte(nil), s.buf[:min(len(s.buf), maxHead)]...),
		Len:    s.n,
		Offset: off,
		At:     at,
	}
	s.reset()
	return e
}

func (s *splitter) reset() {
	s.buf = s.buf[:0]
	s.n = 0
}

func alnum(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}
