package devices_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"onecard/devices"
	"onecard/devices/pn532"
)

// Keeping the desk encoder connected: the session makes the driver on each
// fresh port, initialises it and polls for cards until the port fails.
func ExamplePort_Run() {
	cfg := devices.SerialConfig{Path: "/dev/ttyUSB0"}
	p := devices.NewPort("desk encoder", func() (io.ReadWriteCloser, error) {
		return devices.OpenSerial(cfg)
	}, slog.Default())

	ctx := context.Background() // the server's lifetime
	p.Run(ctx, func(ctx context.Context, rw io.ReadWriter) error {
		d := pn532.New(rw, nil)
		defer d.Close()
		if err := d.Init(ctx); err != nil {
			return err
		}
		for {
			uid, err := d.Select(ctx)
			switch {
			case errors.Is(err, devices.ErrNoCard):
				// Nothing on the antenna: poll again.
			case err != nil:
				return err // port gone, PN532 silent, ctx done: reopen
			default:
				slog.Info("card", "uid", uid)
				d.Release(ctx)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
}
