package payterm_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"

	"onecard/devices"
	"onecard/devices/payterm"
)

// Taking a payment. The reference is the caller's, made before the sale
// and stored with it, so that a sale whose outcome was lost can be looked
// up; it is never reused for another payment.
func Example() {
	port, err := devices.OpenSerial(devices.SerialConfig{Path: "/dev/ttyUSB1"})
	if err != nil {
		log.Fatal(err)
	}
	defer port.Close()
	term := payterm.New(port, nil)
	defer term.Close()

	ctx := context.Background()
	r, err := term.Sale(ctx, "PAY-2024-000123", 12000) // ¥120.00
	switch {
	case err == nil && r.State == payterm.Approved:
		fmt.Printf("paid: auth %s, card *%s, trace %06d\n", r.Auth, r.Last4, r.Trace)
	case err == nil:
		fmt.Printf("not paid (%s): %s\n", r.Reason, r.ReasonText)
	case errors.Is(err, payterm.ErrUnknownOutcome), errors.Is(err, payterm.ErrInProgress):
		// Money may have been taken: keep the payment pending and resolve
		// it with Query (or Cancel) before the customer pays again.
		fmt.Println("pending:", err)
	default:
		// Nothing was charged (ErrNotTaken, ErrBusy, a refusal).
		fmt.Println("not paid:", err)
	}
}

// Keeping the terminal connected: the session makes the driver on each
// fresh port, hands it to whoever takes payments, and ends when the port
// fails so that devices.Port opens it again.
func ExampleTerminal_Done() {
	cfg := devices.SerialConfig{Path: "/dev/ttyUSB1"}
	p := devices.NewPort("payment terminal", func() (io.ReadWriteCloser, error) {
		return devices.OpenSerial(cfg)
	}, slog.Default())
	terminals := make(chan *payterm.Terminal, 1) // read by the cashier service

	ctx := context.Background() // the server's lifetime
	p.Run(ctx, func(ctx context.Context, rw io.ReadWriter) error {
		term := payterm.New(rw, nil)
		defer term.Close()
		if _, err := term.Status(ctx); err != nil {
			return err
		}
		terminals <- term
		select {
		case <-term.Done():
			return term.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}
