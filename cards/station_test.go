package cards_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onecard/cards"
	"onecard/devices"
)

// TestStationShowsAMissingPort: an encoder path that does not exist shows
// as disconnected with the reason, and Do refuses to run.
func TestStationShowsAMissingPort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ttyUSB9")
	st := cards.NewStation(path)
	port := devices.NewPort("encoder", func() (io.ReadWriteCloser, error) {
		return devices.OpenSerial(devices.SerialConfig{Path: path})
	}, nil)
	st.WatchPort(port.State)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); port.Run(ctx, func(context.Context, io.ReadWriter) error { return nil }) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := st.Status()
		if strings.Contains(s.Error, "no such file") {
			if s.Connected || s.Port != path {
				t.Fatalf("status %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never said why: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := st.Do(ctx, func(*cards.Encoder) error { return nil }); !errors.Is(err, cards.ErrNotConnected) {
		t.Fatalf("Do while disconnected: %v", err)
	}
}

// TestStationPollsTheAntenna: attached to an encoder, Poll reports the
// card that lies there and nothing once it is lifted.
func TestStationPollsTheAntenna(t *testing.T) {
	r := newRig(t, 0, 0)
	st := cards.NewStation("sim")
	st.Attach(r.enc, "PN532 v1.6")
	ctx := context.Background()
	if err := st.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	s := st.Status()
	if !s.Connected || s.Card == nil || s.Card.UID.String() != "04A23B1C" || s.Card.State != cards.Blank {
		t.Fatalf("status %+v", s)
	}
	r.sim.Remove()
	if err := st.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if s := st.Status(); s.Card != nil {
		t.Fatalf("a lifted card is still shown: %+v", s.Card)
	}
	st.Detach(errors.New("pn532: port failed"))
	if s := st.Status(); s.Connected || s.Error != "pn532: port failed" {
		t.Fatalf("after detach %+v", s)
	}
}
