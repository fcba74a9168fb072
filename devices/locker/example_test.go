package locker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"time"

	"onecard/devices"
	"onecard/devices/locker"
)

// Opening door 18 of a bank of 48 (three boards at addresses 0, 1, 2) for
// a resident picking up a parcel.
func Example() {
	port, err := devices.OpenSerial(devices.SerialConfig{Path: "/dev/ttyUSB0", Baud: 19200})
	if err != nil {
		log.Fatal(err)
	}
	defer port.Close()
	bank, err := locker.New(port, 48, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer bank.Close()

	err = bank.Open(context.Background(), 18)
	switch {
	case errors.Is(err, devices.ErrDoorNotOpened):
		fmt.Println("door 18 is stuck: please ask the desk")
	case errors.Is(err, devices.ErrTimeout):
		fmt.Println("the locker bank does not answer: is it powered and cabled?")
	case err != nil:
		log.Fatal(err)
	}
}

// Keeping the bank connected: the session makes a driver on each fresh
// port and reads the doors now and then, so that an unplugged adapter is
// noticed and the port reopened. A board that stops answering is logged
// without ending the session: the other boards' doors still work.
func Example_port() {
	cfg := devices.SerialConfig{Path: "/dev/ttyUSB0", Baud: 19200}
	port := devices.NewPort("locker bank", func() (io.ReadWriteCloser, error) {
		return devices.OpenSerial(cfg)
	}, slog.Default())
	port.Run(context.Background(), func(ctx context.Context, rw io.ReadWriter) error {
		bank, err := locker.New(rw, 48, nil)
		if err != nil {
			return err
		}
		defer bank.Close()
		var l devices.Locker = bank // what the mailroom is given
		for {
			states, err := l.Status(ctx)
			switch {
			case errors.Is(err, locker.ErrNoAnswer):
				slog.Warn("locker boards silent", "err", err)
			case err != nil:
				return err // port gone, ctx done: reopen
			}
			slog.Debug("locker doors", "states", states)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Second):
			}
		}
	})
}
