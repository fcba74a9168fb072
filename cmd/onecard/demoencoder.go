package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	firmwaresim "onecard/firmware-sim"
	pn532sim "onecard/firmware-sim/pn532"
)

// demoCardUID is the blank card lying on the demo encoder.
var demoCardUID = []byte{0x04, 0xA2, 0x3B, 0x1C}

// startDemoEncoder runs a simulated PN532 on a pty linked at
// DATA_DIR/encoder.pty, with a blank card on its antenna, and returns the
// link for the driver to open like a real serial port.
func startDemoEncoder(ctx context.Context, dataDir string, baud int, log *slog.Logger, hw *demoHardware) (string, func(), error) {
	link := filepath.Join(dataDir, "encoder.pty")
	pty, err := firmwaresim.OpenPTY(link)
	if err != nil {
		return "", nil, err
	}
	sim := pn532sim.New(pn532sim.Options{Baud: baud, RFLatency: 3 * time.Millisecond, Log: log.With("sim", "pn532")})
	hw.sim = sim
	hw.place(pn532sim.NewCard(demoCardUID))
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sim.Serve(sctx, pty); err != nil && sctx.Err() == nil {
			log.Error("simulated encoder stopped", "err", err)
		}
	}()
	return link, func() {
		cancel()
		<-done
		pty.Close()
	}, nil
}
