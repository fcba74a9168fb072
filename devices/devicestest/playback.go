// Package devicestest holds fakes for testing serial drivers against
// byte-exact fixtures: a scripted device on the far end of a net.Pipe.
package devicestest

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"
)

// StepTimeout bounds how long the scripted device waits for the driver to
// send a step's bytes, or to take its reply, before failing the test.
const StepTimeout = 2 * time.Second

// Step is one turn of a scripted device: read exactly Want from the driver
// (skipped when empty), wait Delay, then write Reply (skipped when empty).
// A step with Want and no Reply is a device that heard and stayed silent.
type Step struct {
	Want  []byte
	Delay time.Duration
	Reply []byte
}

// Playback returns the driver's end of a net.Pipe whose other end plays
// steps in order. A mismatch fails t and stops the script; bytes the driver
// sends after the last step fail t too. When the test ends the device's end
// is closed (the driver then reads io.EOF) and the test fails if the driver
// never sent what a step wanted.
func Playback(t testing.TB, steps ...Step) net.Conn {
	t.Helper()
	drv, dev := net.Pipe()
	done, stop := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		play(t, dev, steps, stop)
	}()
	t.Cleanup(func() {
		// A device still waiting for a step the driver never sent reports
		// it and stops.
		close(stop)
		<-done
		dev.Close()
	})
	return drv
}

func play(t testing.TB, dev net.Conn, steps []Step, stop <-chan struct{}) {
	for i, s := range steps {
		if len(s.Want) > 0 {
			got, err := read(dev, len(s.Want), stop)
			if err != nil || !bytes.Equal(got, s.Want) {
				t.Errorf("devicestest: step %d: driver sent % X (%v), want % X", i, got, err, s.Want)
				drain(dev, stop, nil)
				return
			}
		}
		if s.Delay > 0 {
			time.Sleep(s.Delay)
		}
		if len(s.Reply) > 0 {
			if err := write(dev, s.Reply, stop); err != nil {
				t.Errorf("devicestest: step %d: reply % X not taken: %v", i, s.Reply, err)
				drain(dev, stop, nil)
				return
			}
		}
	}
	// The script is over: whatever else the driver sends is a failure.
	drain(dev, stop, func(b []byte) {
		t.Errorf("devicestest: driver sent % X after the script ended", b)
	})
}

var (
	errEnded = errors.New("the test ended first")
	errSlow  = errors.New("not done within StepTimeout")
)

// read reads n bytes, unless the test ends or StepTimeout passes first.
func read(dev net.Conn, n int, stop <-chan struct{}) ([]byte, error) {
	got := make([]byte, 0, n)
	end := time.Now().Add(StepTimeout)
	for len(got) < n {
		select {
		case <-stop:
			return got, errEnded
		default:
		}
		if time.Now().After(end) {
			return got, errSlow
		}
		dev.SetReadDeadline(time.Now().Add(poll))
		m, err := dev.Read(got[len(got):n])
		got = got[:len(got)+m]
		if err != nil && !isTimeout(err) {
			return got, err
		}
	}
	return got, nil
}

// write writes b, unless the test ends or StepTimeout passes first.
func write(dev net.Conn, b []byte, stop <-chan struct{}) error {
	end := time.Now().Add(StepTimeout)
	for len(b) > 0 {
		select {
		case <-stop:
			return errEnded
		default:
		}
		if time.Now().After(end) {
			return errSlow
		}
		dev.SetWriteDeadline(time.Now().Add(poll))
		n, err := dev.Write(b)
		b = b[n:]
		if err != nil && !isTimeout(err) {
			return err
		}
	}
	return nil
}

// poll is how often a waiting script checks whether the test ended.
const poll = 20 * time.Millisecond

// drain keeps reading, so that the driver's writes do not block, until the
// test ends; extra gets what was read.
func drain(dev net.Conn, stop <-chan struct{}, extra func([]byte)) {
	buf := make([]byte, 512)
	for {
		select {
		case <-stop:
			return
		default:
		}
		dev.SetReadDeadline(time.Now().Add(poll))
		n, err := dev.Read(buf)
		if n > 0 && extra != nil {
			extra(buf[:n])
		}
		if err != nil && !isTimeout(err) {
			return
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
