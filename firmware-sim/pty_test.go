//go:build unix

package firmwaresim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tarm/serial"

	"onecard/devices/pn532"
	firmwaresim "onecard/firmware-sim"
	pn532sim "onecard/firmware-sim/pn532"
)

// portReader reads a tarm/serial port byte by byte until a deadline: a read
// that times out there returns (0, io.EOF), which means "no data yet".
type portReader struct {
	r        io.Reader
	buf      []byte
	deadline time.Time
}

func (p *portReader) ReadByte() (byte, error) {
	for len(p.buf) == 0 {
		if time.Now().After(p.deadline) {
			return 0, os.ErrDeadlineExceeded
		}
		b := make([]byte, 64)
		n, err := p.r.Read(b)
		p.buf = b[:n]
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
	}
	b := p.buf[0]
	p.buf = p.buf[1:]
	return b, nil
}

// The driver's way in: tarm/serial on the symlink, a GetFirmwareVersion
// round trip.
func TestPTYWithSerialPort(t *testing.T) {
	link := filepath.Join(t.TempDir(), "pn532")
	p, err := firmwaresim.OpenPTY(link)
	if err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(link); err != nil || target != p.Name() || p.Link() != link || !strings.HasPrefix(p.Name(), "/dev/") {
		t.Fatalf("link %s → %q (%v), slave %s", link, target, err, p.Name())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pn532sim.New(pn532sim.Options{Baud: 115200}).Serve(ctx, p) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Error("Serve did not stop")
		}
		if err := p.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("link left behind: %v", err)
		}
	}()

	port, err := serial.OpenPort(&serial.Config{Name: link, Baud: 115200, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	// Twice, reopening the port, as a driver reconnecting would.
	for range 2 {
		if _, err := port.Write([]byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00}); err != nil {
			t.Fatal(err)
		}
		r := &portReader{r: port, deadline: time.Now().Add(2 * time.Second)}
		if f, err := pn532.ReadFrame(r); err != nil || f.Kind != pn532.Ack {
			t.Fatalf("ACK: %v %v", f.Kind, err)
		}
		f, err := pn532.ReadFrame(r)
		if err != nil || !bytes.Equal(f.Data, []byte{0x03, 0x32, 0x01, 0x06, 0x07}) {
			t.Fatalf("response: % X %v", f.Data, err)
		}
		port.Close()
		if port, err = serial.OpenPort(&serial.Config{Name: link, Baud: 115200, ReadTimeout: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPTYLink(t *testing.T) {
	dir := t.TempDir()

	// A stale symlink is replaced; Close removes only its own link.
	link := filepath.Join(dir, "stale")
	if err := os.Symlink("/dev/pts/nonexistent", link); err != nil {
		t.Fatal(err)
	}
	p, err := firmwaresim.OpenPTY(link)
	if err != nil {
		t.Fatalf("over a stale symlink: %v", err)
	}
	if target, _ := os.Readlink(link); target != p.Name() {
		t.Fatalf("link → %q, want %q", target, p.Name())
	}
	q, err := firmwaresim.OpenPTY(link) // a second simulator takes the link over
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if target, _ := os.Readlink(link); target != q.Name() {
		t.Fatalf("closing the first pty touched the second's link: → %q", target)
	}
	q.Close()
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("link left behind: %v", err)
	}

	// A regular file is not a link to replace.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := firmwaresim.OpenPTY(file); err == nil {
		p.Close()
		t.Fatal("replaced a regular file")
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Fatalf("file now %q", b)
	}

	// No link at all.
	p, err = firmwaresim.OpenPTY("")
	if err != nil {
		t.Fatal(err)
	}
	if p.Link() != "" {
		t.Errorf("Link() = %q", p.Link())
	}
	p.Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left in dir: %v", entries)
	}
}
