package scanner

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidTracking: a code is not a tracking number (ValidTracking).
var ErrInvalidTracking = errors.New("invalid tracking number")

// Tracking number length, dashes included.
const (
	MinTracking = 6
	MaxTracking = 40
)

// Normalize puts a tracking number, scanned or typed, in the one form it is
// stored and compared in: full-width letters, digits and punctuation
// (U+FF01–U+FF5E, as a Chinese input method types them) and the
// ideographic space become their ASCII forms, Unicode hyphens and dashes
// (U+2010–U+2015, U+2212) become "-", ASCII letters are upper-cased, and
// spaces are trimmed from both ends. Anything else is left as it is, for
// ValidTracking to refuse. Normalize(Normalize(s)) == Normalize(s).
func Normalize(code string) string {
	return strings.TrimSpace(strings.Map(fold, code))
}

func fold(r rune) rune {
	switch {
	case 'a' <= r && r <= 'z':
		return r - 'a' + 'A'
	case 0xFF01 <= r && r <= 0xFF5E:
		r -= 0xFF01 - '!'
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	case r == 0x3000:
		return ' '
	case 0x2010 <= r && r <= 0x2015, r == 0x2212:
		return '-'
	}
	return r
}

// ValidTracking reports whether code, as Normalize returns it, looks like
// a courier's tracking number: 6 to 40 characters, upper-case letters A–Z,
// digits (at least one) and dashes, a dash only between two letters or
// digits. SF1234567890123, 1Z999AA10123456784, EA123456789CN and
// 773-1234-5678 pass. The error wraps ErrInvalidTracking and says what is
// wrong, in English, for the log and the clerk.
func ValidTracking(code string) error {
	invalid := func(format string, a ...any) error {
		return fmt.Errorf("scanner: %w %q: %s", ErrInvalidTracking, short(code), fmt.Sprintf(format, a...))
	}
	n := utf8.RuneCountInString(code)
	switch {
	case n == 0:
		return fmt.Errorf("scanner: %w: empty", ErrInvalidTracking)
	case n < MinTracking:
		return invalid("too short (%d characters, at least %d)", n, MinTracking)
	case n > MaxTracking:
		return invalid("too long (%d characters, at most %d)", n, MaxTracking)
	}
	digits, pos := 0, 0
	prev := rune(0)
	for i, r := range code {
		pos++
		switch {
		case '0' <= r && r <= '9':
			digits++
		case 'A' <= r && r <= 'Z':
		case r == '-' && (pos == 1 || i == len(code)-1):
			return invalid("begins or ends with a dash")
		case r == '-' && prev == '-':
			return invalid("two dashes in a row at character %d", pos)
		case r == '-':
		case 'a' <= r && r <= 'z':
			return invalid("lower-case letter %q at character %d (Normalize it first)", r, pos)
		case r == utf8.RuneError && !strings.HasPrefix(code[i:], "\uFFFD"):
			return invalid("not UTF-8 at byte %d", i)
		default:
			return invalid("%q at character %d: only letters, digits and dashes", r, pos)
		}
		prev = r
	}
	if digits == 0 {
		return invalid("no digit")
	}
	return nil
}

// short cuts a code for an error message.
func short(s string) string {
	const limit = 48
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
