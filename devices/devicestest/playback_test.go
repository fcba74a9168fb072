package devicestest_test

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"onecard/devices/devicestest"
)

// recorder keeps the failures a script reports instead of failing.
type recorder struct {
	*testing.T
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// run plays steps against driver in a subtest and returns the failures.
func run(t *testing.T, driver func(rw io.ReadWriter), steps ...devicestest.Step) []string {
	rec := &recorder{}
	t.Run("script", func(t *testing.T) {
		rec.T = t
		port := devicestest.Playback(rec, steps...)
		driver(port)
	})
	return rec.errs
}

func TestPlayback(t *testing.T) {
	for _, tc := range []struct {
		name   string
		driver func(rw io.ReadWriter)
		want   string // "" for no failure
	}{
		{"followed", func(rw io.ReadWriter) {
			rw.Write([]byte{1, 2})
			b := make([]byte, 2)
			io.ReadFull(rw, b)
			rw.Write([]byte{3})
		}, ""},
		{"wrong bytes", func(rw io.ReadWriter) {
			rw.Write([]byte{1, 9})
		}, "step 0: driver sent 01 09"},
		{"step never sent", func(rw io.ReadWriter) {
			rw.Write([]byte{1, 2})
			b := make([]byte, 2)
			io.ReadFull(rw, b)
		}, "step 1: driver sent  (the test ended first), want 03"},
		{"extra bytes", func(rw io.ReadWriter) {
			rw.Write([]byte{1, 2})
			b := make([]byte, 2)
			io.ReadFull(rw, b)
			rw.Write([]byte{3, 4})
		}, "driver sent 04 after the script ended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			errs := run(t, tc.driver,
				devicestest.Step{Want: []byte{1, 2}, Reply: []byte{0xA, 0xB}},
				devicestest.Step{Want: []byte{3}},
			)
			if time.Since(start) > time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Errorf("failures %q", errs)
			case tc.want != "" && (len(errs) != 1 || !strings.Contains(errs[0], tc.want)):
				t.Errorf("failures %q, want one with %q", errs, tc.want)
			}
		})
	}
}
