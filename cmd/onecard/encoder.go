package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"onecard/cards"
	"onecard/devices"
	"onecard/devices/pn532"
)

// pollEvery is how often the desk encoder's antenna is read.
const pollEvery = 500 * time.Millisecond

// runEncoder keeps the desk encoder on path connected (reopening the port
// with backoff when it disappears) and its antenna polled for the panel.
func runEncoder(ctx context.Context, c *config, keys cards.Keys, station *cards.Station, log *slog.Logger) *devices.Port {
	open := func() (io.ReadWriteCloser, error) {
		return devices.OpenSerial(devices.SerialConfig{Path: c.Encoder, Baud: c.EncoderBaud, ReadTimeout: 100 * time.Millisecond})
	}
	port := devices.NewPort("encoder "+c.Encoder, open, log)
	station.WatchPort(port.State)
	go port.Run(ctx, func(ctx context.Context, rw io.ReadWriter) (err error) {
		dev := pn532.New(rw, &pn532.Opts{Baud: c.EncoderBaud})
		defer dev.Close()
		defer func() { station.Detach(err) }()
		if err := dev.Init(ctx); err != nil {
			return err
		}
		fw, err := dev.Firmware(ctx)
		if err != nil {
			return err
		}
		enc, err := cards.NewEncoder(dev, keys, c.CardSector)
		if err != nil {
			return err
		}
		station.Attach(enc, fmt.Sprintf("PN5%02X v%d.%d", fw.IC, fw.Ver, fw.Rev))
		log.Info("card encoder connected", "port", c.Encoder, "ic", fmt.Sprintf("%02X", fw.IC), "version", fmt.Sprintf("%d.%d", fw.Ver, fw.Rev))
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		for {
			if err := station.Poll(ctx); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
	})
	return port
}
