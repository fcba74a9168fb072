package devices_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"onecard/devices"
)

func TestRxBuffer(t *testing.T) {
	r := devices.NewRxBuffer(4)
	if _, ok, err := r.Next(); ok || err != nil {
		t.Fatalf("empty Next: ok %v err %v", ok, err)
	}
	r.Push([]byte{1, 2, 3})
	select {
	case <-r.Ready():
	default:
		t.Fatal("Push did not signal Ready")
	}
	r.Push([]byte{4, 5, 6}) // over 4: 1 and 2 go
	if n, d := r.Len(), r.Discarded(); n != 4 || d != 2 {
		t.Fatalf("after overflow: %d unread, %d discarded; want 4, 2", n, d)
	}
	if b, ok, err := r.Next(); b != 3 || !ok || err != nil {
		t.Fatalf("Next: %d %v %v, want the oldest kept byte, 3", b, ok, err)
	}
	r.Consume(func(p []byte) int {
		if string(p) != "\x04\x05\x06" {
			t.Errorf("Consume saw % x", p)
		}
		return 2
	})
	if b, _, _ := r.Next(); b != 6 || r.Len() != 0 {
		t.Fatalf("after Consume(2): next %d, %d left; want 6, 0", b, r.Len())
	}
	r.Push([]byte{7, 8})
	r.Drain()
	if n, d := r.Len(), r.Discarded(); n != 0 || d != 4 {
		t.Fatalf("after Drain: %d unread, %d discarded; want 0, 4", n, d)
	}

	<-r.Ready() // the Push of 7, 8
	first := errors.New("first")
	r.Fail(first)
	r.Fail(errors.New("second"))
	select {
	case <-r.Ready():
	default:
		t.Fatal("Fail did not signal Ready")
	}
	if err := r.Err(); !errors.Is(err, devices.ErrPortFailed) || !errors.Is(err, first) {
		t.Fatalf("Err = %v, want the first failure wrapped in ErrPortFailed", err)
	}
	r.Push([]byte{9})
	if b, ok, err := r.Next(); b != 9 || !ok || err != nil {
		t.Fatalf("bytes that came before the failure are still read: %d %v %v", b, ok, err)
	}
	if _, ok, err := r.Next(); ok || !errors.Is(err, devices.ErrPortFailed) {
		t.Fatalf("empty after failure: ok %v err %v", ok, err)
	}
}

// TestRxBufferFill: Fill keeps what the port brings and records the port
// hanging up.
func TestRxBufferFill(t *testing.T) {
	pr, pw := io.Pipe()
	r := devices.NewRxBuffer(64)
	done := make(chan struct{})
	go func() {
		r.Fill(pr, 16, make(chan struct{}))
		close(done)
	}()
	pw.Write([]byte("hello"))
	for r.Len() < 5 {
		<-r.Ready()
	}
	pw.Close() // every read now ends at once with io.EOF: a hang-up
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Fill did not end when the port hung up")
	}
	if err := r.Err(); !errors.Is(err, devices.ErrHungUp) || !errors.Is(err, devices.ErrPortFailed) {
		t.Fatalf("Err = %v, want ErrHungUp in ErrPortFailed", err)
	}
	got := ""
	for {
		b, ok, _ := r.Next()
		if !ok {
			break
		}
		got += string(b)
	}
	if got != "hello" {
		t.Fatalf("read %q, want hello", got)
	}
}
