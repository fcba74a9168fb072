package devices

import (
	"errors"
	"io"
	"time"
)

// ErrHungUp: every read of the port ends at once, again and again: a tty
// whose USB adapter was unplugged or whose pty master closed (Linux hangs
// it up), or a closed pipe.
var ErrHungUp = errors.New("port hung up (every read ends at once: adapter unplugged or peer closed)")

// Hang-up detection: a serial read that times out takes ReadTimeout (at
// least 100 ms with tarm/serial); hangUpAfter reads in a row that return
// io.EOF faster than fastEOF are a port that hung up.
const (
	fastEOF     = 5 * time.Millisecond
	hangUpAfter = 5
)

// ReadLoop is a driver's only reader of its port (io.Reader has no
// deadlines, so reads happen here and requests wait on what got stores).
// After every read, including one that brought nothing (tarm/serial's
// (0, io.EOF) for "no data before ReadTimeout"), it calls got with the
// bytes read, valid only during the call, and the time of the read. It
// returns nil when closed is closed, or the error that ended it: the
// port's, or ErrHungUp.
func ReadLoop(port io.Reader, bufSize int, closed <-chan struct{}, got func(p []byte, at time.Time)) error {
	buf := make([]byte, bufSize)
	fast := 0
	for {
		start := time.Now()
		n, err := port.Read(buf)
		now := time.Now()
		select {
		case <-closed:
			return nil
		default:
		}
		got(buf[:n], now)
		if n > 0 {
			fast = 0
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if n > 0 {
			continue
		}
		if now.Sub(start) >= fastEOF {
			fast = 0
			continue
		}
		fast++
		if fast >= hangUpAfter {
			return ErrHungUp
		}
		t := time.NewTimer(time.Millisecond << fast)
		select {
		case <-closed:
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
