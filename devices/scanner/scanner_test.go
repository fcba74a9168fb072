package scanner_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"onecard/devices"
	"onecard/devices/scanner"
)

// step bounds every wait, so that a broken driver fails a test instead of
// hanging it.
const step = 5 * time.Second

// pipe is a Scanner on one end of a net.Pipe; the test writes the other.
func pipe(t *testing.T, opts *scanner.Opts) (net.Conn, *scanner.Scanner) {
	t.Helper()
	drv, dev := net.Pipe()
	sc := scanner.New(drv, opts)
	t.Cleanup(func() {
		sc.Close()
		dev.Close()
		drv.Close()
	})
	return dev, sc
}

func write(t *testing.T, w io.Writer, chunks ...string) {
	t.Helper()
	for _, c := range chunks {
		if _, err := io.WriteString(w, c); err != nil {
			t.Fatal(err)
		}
	}
}

// goWrite writes chunks from another goroutine, for a driver that reads
// them meanwhile; the test waits for it before it ends.
func goWrite(t *testing.T, w io.Writer, chunks ...string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, c := range chunks {
			if _, err := io.WriteString(w, c); err != nil {
				t.Errorf("write: %v", err)
				return
			}
		}
	}()
	t.Cleanup(func() { <-done })
}

// item is what Next returned, in a form tests compare: the code, or the
// cause of a rejection.
type item struct {
	code string
	err  error // the LineError's Err
}

func next(t *testing.T, sc *scanner.Scanner) (scanner.Scan, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	s, err := sc.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("Next: nothing within", step)
	}
	return s, err
}

// expect takes len(want) lines from sc and compares them with want.
func expect(t *testing.T, sc *scanner.Scanner, want ...item) {
	t.Helper()
	for i, w := range want {
		s, err := next(t, sc)
		var le *scanner.LineError
		switch {
		case err != nil && !errors.As(err, &le):
			t.Fatalf("line %d: %v, want %+v", i, err, w)
		case le != nil && !errors.Is(err, scanner.ErrRejected):
			t.Fatalf("line %d: %v does not wrap ErrRejected", i, err)
		case le != nil && w.err != le.Err:
			t.Fatalf("line %d: rejected (%v), want %+v", i, err, w)
		case le == nil && (w.err != nil || s.Code != w.code):
			t.Fatalf("line %d: scanned %q, want %+v", i, s.Code, w)
		}
	}
}

func codes(cs ...string) []item {
	var items []item
	for _, c := range cs {
		items = append(items, item{code: c})
	}
	return items
}

func TestTerminators(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
	}{
		{"CR", []string{"SF1001\rSF1002\r", "SF1003\r"}},
		{"LF", []string{"SF1001\nSF1002\n", "SF1003\n"}},
		{"CRLF", []string{"SF1001\r\nSF1002\r\n", "SF1003\r\n"}},
		{"CRLF split", []string{"SF1001\r", "\nSF1002\r", "\n", "SF1003\r", "\n"}},
		{"LFCR", []string{"SF1001\n\rSF1002\n\r", "SF1003\n\r"}},
		{"mixed", []string{"SF1001\r\n\r\nSF1002\n\n\rSF1003\r"}},
		{"a byte at a time", strings.Split("SF1001\r\nSF1002\r\nSF1003\r\n", "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev, sc := pipe(t, nil)
			write(t, dev, tc.chunks...)
			// The end of a line, not the end of a write, ends a code.
			write(t, dev, "SF10", "04\r\n")
			expect(t, sc, codes("SF1001", "SF1002", "SF1003", "SF1004")...)
		})
	}
}

// Lines a scanner would not send are rejected one by one; the codes around
// them come through.
func TestRejected(t *testing.T) {
	dev, sc := pipe(t, nil)
	long := strings.Repeat("7", 129)
	goWrite(t, dev,
		"SF1001\r\n",
		long+"\r\n",
		long[:128]+"\r\n",
		strings.Repeat("X", 5000)+"\r\n",
		"\xff\x00\xfe\x80\r\n", // the first bad byte says why
		"JD\xc3(0001\r\n",
		"SF\x1b1002\r\n",
		"SF\u00851003\r\n", // a C1 control in UTF-8
		"\tSF1004\r\n",
		"SF1005\x7f\r\n",
		"SF1006\r\n",
	)
	expect(t, sc,
		item{code: "SF1001"},
		item{err: scanner.ErrTooLong},
		item{code: long[:128]},
		item{err: scanner.ErrTooLong},
		item{err: scanner.ErrEncoding},
		item{err: scanner.ErrEncoding},
		item{err: scanner.ErrControl},
		item{err: scanner.ErrControl},
		item{err: scanner.ErrControl},
		item{err: scanner.ErrControl},
		item{code: "SF1006"},
	)
}

func TestLineError(t *testing.T) {
	dev, sc := pipe(t, nil)
	goWrite(t, dev, "SF\x1b1002\r\n", strings.Repeat("A", 200)+"\n", "ok\xff\n")
	for _, want := range []struct {
		err    error
		line   string
		n, off int
		msg    string
	}{
		{scanner.ErrControl, "SF\x1b1002", 7, 2, `scanner: line rejected: control character at byte 2: "SF\x1b1002" (7 bytes)`},
		{scanner.ErrTooLong, strings.Repeat("A", 32), 200, 0, `scanner: line rejected: line too long: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"… (200 bytes)`},
		{scanner.ErrEncoding, "ok\xff", 3, 2, `scanner: line rejected: not UTF-8 at byte 2: "ok\xff" (3 bytes)`},
	} {
		_, err := next(t, sc)
		var le *scanner.LineError
		if !errors.As(err, &le) {
			t.Fatalf("%v, want a LineError", err)
		}
		if le.Err != want.err || string(le.Line) != want.line || le.Len != want.n || le.Offset != want.off || le.Error() != want.msg {
			t.Errorf("got %+v\n%s\nwant %+v", le, le, want)
		}
	}
}

func TestAIM(t *testing.T) {
	t.Run("on", func(t *testing.T) {
		dev, sc := pipe(t, &scanner.Opts{AIM: true})
		goWrite(t, dev, "]C0SF1001\r\n", "]Q1https://x.example/p?id=1\r\n", "]C0\r\n", "]x\r\n", "]C\x01SF1\r\n", "SF1002\r\n")
		for _, want := range []scanner.Scan{{Code: "SF1001", Symbology: "]C0"}, {Code: "https://x.example/p?id=1", Symbology: "]Q1"}} {
			s, err := next(t, sc)
			if err != nil || s.Code != want.Code || s.Symbology != want.Symbology {
				t.Fatalf("%+v %v, want %+v", s, err, want)
			}
		}
		expect(t, sc, item{err: scanner.ErrEmpty}, item{code: "]x"}, item{err: scanner.ErrControl}, item{code: "SF1002"})
	})
	t.Run("off", func(t *testing.T) {
		dev, sc := pipe(t, nil)
		goWrite(t, dev, "]C0SF1001\r\n")
		s, err := next(t, sc)
		if err != nil || s.Code != "]C0SF1001" || s.Symbology != "" {
			t.Fatalf("%+v %v", s, err)
		}
	})
}

// A line begun and left without its end for longer than LineGap is noise:
// it is rejected, and does not spoil the code that follows.
func TestUnterminated(t *testing.T) {
	dev, sc := pipe(t, &scanner.Opts{LineGap: 20 * time.Millisecond})
	write(t, dev, "\xff\xfeNO")
	time.Sleep(100 * time.Millisecond)
	write(t, dev, "SF1001\r\n")
	s, err := next(t, sc)
	var le *scanner.LineError
	if !errors.As(err, &le) || le.Err != scanner.ErrUnterminated || string(le.Line) != "\xff\xfeNO" {
		t.Fatalf("%+v %v, want the noise rejected as unterminated", s, err)
	}
	expect(t, sc, item{code: "SF1001"})
}

// slowEOF is a serial port with nothing to read: every read waits a while
// and returns (0, io.EOF), as tarm/serial's do at their ReadTimeout, until
// data is given to it.
type slowEOF struct {
	mu    sync.Mutex
	data  []byte
	reads int
}

func (r *slowEOF) Read(b []byte) (int, error) {
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads++
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(b, r.data)
	r.data = r.data[n:]
	return n, nil
}

func (r *slowEOF) give(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.data = append(r.data, s...)
	return r.reads
}

// A read that times out is "no data yet", not the end; a line split by
// read timeouts is still one line.
func TestReadTimeout(t *testing.T) {
	port := &slowEOF{}
	sc := scanner.New(port, &scanner.Opts{LineGap: step})
	defer sc.Close()
	for deadline := time.Now().Add(step); port.give("") < 3; {
		if time.Now().After(deadline) {
			t.Fatal("the driver stopped reading")
		}
		time.Sleep(10 * time.Millisecond)
	}
	port.give("SF10")
	time.Sleep(100 * time.Millisecond) // a few more timeouts mid-line
	port.give("01\r\n")
	expect(t, sc, item{code: "SF1001"})
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// A port whose reads all end at once has hung up: the lines read before,
// the cut-off one too, come first, then the failure.
func TestHangUp(t *testing.T) {
	sc := scanner.New(strings.NewReader("SF1001\r\nSF10"), nil)
	defer sc.Close()
	expect(t, sc, item{code: "SF1001"}, item{err: scanner.ErrUnterminated})
	_, err := next(t, sc)
	if !errors.Is(err, devices.ErrPortFailed) || errors.Is(err, scanner.ErrRejected) {
		t.Fatalf("%v, want ErrPortFailed", err)
	}
	<-sc.Done()
	if !errors.Is(sc.Err(), devices.ErrPortFailed) {
		t.Fatalf("Err: %v", sc.Err())
	}
	if _, again := next(t, sc); again.Error() != err.Error() {
		t.Fatalf("again: %v", again)
	}
}

type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }

func TestReadError(t *testing.T) {
	eio := errors.New("input/output error")
	sc := scanner.New(failing{eio}, nil)
	defer sc.Close()
	_, err := next(t, sc)
	if !errors.Is(err, devices.ErrPortFailed) || !errors.Is(err, eio) {
		t.Fatalf("%v, want ErrPortFailed wrapping the read error", err)
	}
}

func TestCloseAndContext(t *testing.T) {
	dev, sc := pipe(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	if _, err := sc.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel: %v", err)
	}
	write(t, dev, "SF1001\r\n")
	got := make(chan error, 1)
	go func() {
		_, err := sc.Next(context.Background())
		got <- err
	}()
	if err := <-got; err != nil {
		t.Fatalf("Next: %v", err)
	}
	go func() {
		_, err := sc.Next(context.Background())
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	sc.Close()
	select {
	case err := <-got:
		if !errors.Is(err, scanner.ErrClosed) {
			t.Fatalf("Next waiting at Close: %v", err)
		}
	case <-time.After(step):
		t.Fatal("Close did not end Next")
	}
	select {
	case <-sc.Done():
	default:
		t.Fatal("Done not closed")
	}
	if !errors.Is(sc.Err(), scanner.ErrClosed) {
		t.Fatalf("Err: %v", sc.Err())
	}
}

// Lines beyond Queue, with nobody reading, are dropped and counted.
func TestOverrun(t *testing.T) {
	dev, sc := pipe(t, &scanner.Opts{Queue: 3})
	write(t, dev, "SF1\r\nSF2\r\nSF3\r\nSF4\r\n\xff\r\nSF6\r\n")
	dev.Close()
	select {
	case <-sc.Done(): // everything was read
	case <-time.After(step):
		t.Fatal("the driver did not see the pipe close")
	}
	expect(t, sc, codes("SF1", "SF2", "SF3")...)
	_, err := next(t, sc)
	var le *scanner.LineError
	if !errors.As(err, &le) || le.Err != scanner.ErrOverrun || le.Lost != 3 {
		t.Fatalf("%v, want 3 lines lost", err)
	}
	if want := "scanner: line rejected: lines lost: nobody was reading (3)"; err.Error() != want {
		t.Errorf("%q, want %q", err, want)
	}
	if _, err := next(t, sc); !errors.Is(err, devices.ErrPortFailed) {
		t.Fatalf("%v, want ErrPortFailed", err)
	}
}

func TestScanTime(t *testing.T) {
	dev, sc := pipe(t, nil)
	before := time.Now()
	write(t, dev, "SF1001\r\n")
	s, err := next(t, sc)
	after := time.Now()
	if err != nil || s.At.Before(before) || s.At.After(after) {
		t.Fatalf("%+v %v: At not between %v and %v", s, err, before, after)
	}
}
