package pn532_test

import (
	"bufio"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/creack/pty"

	"onecard/devices"
	"onecard/devices/pn532"
)

// TestPty runs the driver on a real serial port (a pty opened with
// tarm/serial): idle reads that time out with (0, io.EOF) leave it working;
// the master closing, as an unplugged USB adapter hangs up its tty, breaks
// it.
func TestPty(t *testing.T) {
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer m.Close()
	port, err := devices.OpenSerial(devices.SerialConfig{Path: s.Name()})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()

	// The device: answers GetFirmwareVersion, whatever else comes first.
	served := make(chan error, 1)
	go func() {
		r := bufio.NewReader(m)
		for {
			f, err := pn532.ReadFrame(r)
			if err != nil {
				served <- err
				return
			}
			if f.Kind == pn532.Normal && len(f.Data) > 0 && f.Data[0] == 0x02 {
				_, err := m.Write(cat(ack, fwResp))
				served <- err
				return
			}
		}
	}()

	opts := testOpts
	d := pn532.New(port, &opts)
	defer d.Close()
	time.Sleep(250 * time.Millisecond) // two read timeouts
	fw, err := d.Firmware(context.Background())
	if err != nil || fw.IC != 0x32 {
		t.Fatalf("Firmware = %+v, %v", fw, err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	m.Close()
	time.Sleep(50 * time.Millisecond) // the reader sees the hang-up while idle
	_, err = d.Firmware(context.Background())
	if !errors.Is(err, devices.ErrPortFailed) {
		t.Fatalf("after hang-up: %v, want ErrPortFailed", err)
	}
	t.Log(err)
}
