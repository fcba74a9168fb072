package devices_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"onecard/devices"
)

// newPty returns a pty's master and its slave's path; the test's own slave
// handle is closed, so the slave end belongs to whoever opens the path.
func newPty(t *testing.T) (*os.File, string) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	name := s.Name()
	s.Close()
	t.Cleanup(func() { m.Close() })
	return m, name
}

func TestOpenSerial(t *testing.T) {
	m, path := newPty(t)
	port, err := devices.OpenSerial(devices.SerialConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if _, err := m.Write([]byte{0x00, 0xFF, 0x0A, 0x0D}); err != nil {
		t.Fatal(err)
	}
	// Raw: bytes arrive as sent, no line discipline.
	got := make([]byte, 4)
	if _, err := io.ReadFull(port, got); err != nil || string(got) != "\x00\xff\n\r" {
		t.Fatalf("read % X, %v", got, err)
	}
	// Nothing to read: (0, io.EOF) after the default ReadTimeout.
	start := time.Now()
	n, err := port.Read(got)
	if n != 0 || err != io.EOF {
		t.Fatalf("idle read = %d, %v; want 0, io.EOF", n, err)
	}
	if el := time.Since(start); el < 80*time.Millisecond || el > time.Second {
		t.Errorf("idle read took %v, want about 100 ms", el)
	}
	if _, err := port.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(m, got[:2]); err != nil || string(got[:2]) != "hi" {
		t.Fatalf("master read %q, %v", got[:2], err)
	}
}

func TestOpenSerialMissing(t *testing.T) {
	_, err := devices.OpenSerial(devices.SerialConfig{Path: "/dev/onecard-no-such-port"})
	if err == nil || !strings.Contains(err.Error(), "/dev/onecard-no-such-port") || !strings.HasPrefix(err.Error(), "devices: ") {
		t.Fatalf("err = %v", err)
	}
}

func waitState(t *testing.T, p *devices.Port, what string, ok func(devices.PortState) bool) devices.PortState {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := p.State()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("port never %s: %+v", what, st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPortReconnects: a session on a pty; the pty vanishes as an unplugged
// USB adapter does; the Port reports it and reconnects to the next one.
func TestPortReconnects(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	next := make(chan string)
	open := func() (io.ReadWriteCloser, error) {
		// Blocks until the test plugs an adapter in, so the state in
		// between stays put for the test to see.
		select {
		case path := <-next:
			return devices.OpenSerial(devices.SerialConfig{Path: path})
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	// The session pings the device until a write fails.
	session := func(ctx context.Context, rw io.ReadWriter) error {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := rw.Write([]byte("ping")); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
	}
	p := devices.NewPort("encoder", open, nil)
	if st := p.State(); st.Connected || st.Opens != 0 || st.Since.IsZero() {
		t.Fatalf("new port state %+v", st)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, session)
	}()

	m1, path1 := newPty(t)
	next <- path1
	st := waitState(t, p, "connected", func(s devices.PortState) bool { return s.Connected })
	if st.Opens != 1 || st.Err != "" {
		t.Errorf("connected state %+v", st)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(m1, got); err != nil || string(got) != "ping" {
		t.Fatalf("device read %q, %v", got, err)
	}

	m1.Close() // the adapter vanishes
	st = waitState(t, p, "disconnected", func(s devices.PortState) bool { return !s.Connected })
	if !strings.Contains(st.Err, "input/output error") || st.Opens != 1 {
		t.Errorf("disconnected state %+v, want the write error", st)
	}

	m2, path2 := newPty(t)
	next <- path2
	st = waitState(t, p, "reconnected", func(s devices.PortState) bool { return s.Connected })
	if st.Opens != 2 || st.Err != "" {
		t.Errorf("reconnected state %+v", st)
	}
	if _, err := io.ReadFull(m2, got); err != nil || string(got) != "ping" {
		t.Fatalf("device read %q, %v", got, err)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if st := p.State(); st.Connected || st.Err != "stopped" {
		t.Errorf("stopped state %+v", st)
	}
}

// TestPortBackoff: failed opens are retried after 200 ms, 400 ms, …
func TestPortBackoff(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	open := func() (io.ReadWriteCloser, error) {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		return nil, errors.New("no such adapter")
	}
	p := devices.NewPort("printer", open, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 750*time.Millisecond)
	defer cancel()
	p.Run(ctx, func(context.Context, io.ReadWriter) error {
		t.Error("session started without a port")
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 3 {
		t.Fatalf("%d opens in 750 ms, want 3 (at 0, 200, 600 ms)", len(at))
	}
	if d := at[1].Sub(at[0]); d < 200*time.Millisecond {
		t.Errorf("first retry after %v", d)
	}
	if d := at[2].Sub(at[1]); d < 400*time.Millisecond {
		t.Errorf("second retry after %v", d)
	}
	if st := p.State(); st.Connected || st.Opens != 0 || st.Err != "open: no such adapter" {
		t.Errorf("state %+v", st)
	}
}

// TestPortSessionEnds: a session that returns nil is started again on a
// fresh port, after the shortest backoff.
func TestPortSessionEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var opens, closes int
	var mu sync.Mutex
	open := func() (io.ReadWriteCloser, error) {
		mu.Lock()
		defer mu.Unlock()
		opens++
		return &nopPort{closes: &closes, mu: &mu}, nil
	}
	sessions := make(chan struct{}, 10)
	p := devices.NewPort("scanner", open, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, func(context.Context, io.ReadWriter) error {
			sessions <- struct{}{}
			return nil
		})
	}()
	start := time.Now()
	<-sessions
	<-sessions
	if el := time.Since(start); el < 200*time.Millisecond || el > time.Second {
		t.Errorf("second session after %v, want the 200 ms backoff", el)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if opens < 2 || closes < 1 {
		t.Errorf("%d opens, %d closes", opens, closes)
	}
}

type nopPort struct {
	closes *int
	mu     *sync.Mutex
}

func (p *nopPort) Read([]byte) (int, error)    { return 0, io.EOF }
func (p *nopPort) Write(b []byte) (int, error) { return len(b), nil }
func (p *nopPort) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	*p.closes++
	return nil
}
