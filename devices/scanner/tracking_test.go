package scanner_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"onecard/devices/scanner"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SF1234567890123", "SF1234567890123"},
		{"  sf1234567890123\t", "SF1234567890123"},
		{"1z999aa10123456784", "1Z999AA10123456784"},
		// Full width, as a Chinese input method types it.
		{"ＳＦ１２３４５６７８９０１２３", "SF1234567890123"},
		{"ｊｄｖａ０１２３４５６７８９", "JDVA0123456789"},
		{"\u3000YT１２３４５６７８\u3000", "YT12345678"},
		{"７７３－１２３４－５６７８", "773-1234-5678"},
		{"773–1234—5678‐9", "773-1234-5678-9"}, // en dash, em dash, hyphen
		{"773−1234", "773-1234"},               // minus sign
		{"ＥＡ１２３４５６７８９ＣＮ", "EA123456789CN"},
		// Only ASCII letters change case; the rest is left for
		// ValidTracking to refuse.
		{"straße-ß", "STRAßE-ß"},
		{"京a12345", "京A12345"},
		{"SF 1234 5678", "SF 1234 5678"},
		{"", ""},
		{" \u3000 ", ""},
	} {
		if got := scanner.Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidTracking(t *testing.T) {
	for _, tc := range []struct {
		code string
		why  string // in the error; "" when valid
	}{
		{"SF1234567890123", ""},
		{"1Z999AA10123456784", ""},
		{"EA123456789CN", ""},
		{"JDVA01234567890", ""},
		{"773-1234-5678", ""},
		{"123456", ""},
		{"YT" + strings.Repeat("9", 38), ""},
		{"", "empty"},
		{"SF123", "too short (5 characters, at least 6)"},
		{"ＳＦ１２３", "too short (5 characters, at least 6)"},
		{"YT" + strings.Repeat("9", 39), "too long (41 characters, at most 40)"},
		{"ABCDEFGH", "no digit"},
		{"------", "begins or ends with a dash"},
		{"-123456", "begins or ends with a dash"},
		{"123456-", "begins or ends with a dash"},
		{"123--456", "two dashes in a row at character 5"},
		{"sf1234567", `lower-case letter 's' at character 1 (Normalize it first)`},
		{"SF 1234 5678", `' ' at character 3: only letters, digits and dashes`},
		{"京A123456", `'京' at character 1`},
		{"ＳＦ１２３４５６", `'Ｓ' at character 1`},
		{"SF123\x00456", `'\x00' at character 6`},
		{"SF12\xff3456", "not UTF-8 at byte 4"},
		{"SF12\uFFFD3456", `'�' at character 5`},
	} {
		err := scanner.ValidTracking(tc.code)
		switch {
		case tc.why == "" && err != nil:
			t.Errorf("ValidTracking(%q): %v", tc.code, err)
		case tc.why == "":
		case err == nil:
			t.Errorf("ValidTracking(%q) passed, want %q", tc.code, tc.why)
		case !errors.Is(err, scanner.ErrInvalidTracking) || !strings.Contains(err.Error(), tc.why):
			t.Errorf("ValidTracking(%q): %v, want %q", tc.code, err, tc.why)
		}
	}
}

// A long code is cut in the message, on a character boundary.
func TestValidTrackingMessage(t *testing.T) {
	err := scanner.ValidTracking(strings.Repeat("号", 100))
	want := `scanner: invalid tracking number "` + strings.Repeat("号", 16) + `…": too long (100 characters, at most 40)`
	if err == nil || err.Error() != want {
		t.Fatalf("%v\nwant %s", err, want)
	}
}

var trackingRE = regexp.MustCompile(`^[A-Z0-9]+(-[A-Z0-9]+)*$`)

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"sf1234567890123", "ＳＦ１２３４５６７８９０", "\u3000yt-123\u3000", "773–1234—5678",
		"", "-", "ab--12", "\xff\xfe", "ｚ９－", "京A12345 ", "\t\n 1Z999AA10123456784\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := scanner.Normalize(in)
		if again := scanner.Normalize(out); again != out {
			t.Fatalf("Normalize(%q) = %q, and again %q", in, out, again)
		}
		if strings.TrimSpace(out) != out {
			t.Fatalf("Normalize(%q) = %q: not trimmed", in, out)
		}
		for _, r := range out {
			if 'a' <= r && r <= 'z' || 0xFF01 <= r && r <= 0xFF5E || r == 0x3000 {
				t.Fatalf("Normalize(%q) = %q: %q left", in, out, r)
			}
		}
		if utf8.ValidString(in) && utf8.RuneCountInString(out) > utf8.RuneCountInString(in) {
			t.Fatalf("Normalize(%q) = %q: longer", in, out)
		}
		err := scanner.ValidTracking(out)
		n := len(out) // ASCII when valid
		valid := trackingRE.MatchString(out) && n >= scanner.MinTracking && n <= scanner.MaxTracking &&
			strings.ContainsAny(out, "0123456789")
		if (err == nil) != valid {
			t.Fatalf("ValidTracking(%q) = %v, want valid %t", out, err, valid)
		}
		if err != nil && !errors.Is(err, scanner.ErrInvalidTracking) {
			t.Fatalf("ValidTracking(%q) = %v: not ErrInvalidTracking", out, err)
		}
		// What passes unchanged through Normalize is what ValidTracking
		// judges; a raw code never passes where its normal form fails.
		if scanner.ValidTracking(in) == nil && err != nil {
			t.Fatalf("%q valid, its normal form %q not: %v", in, out, err)
		}
	})
}
