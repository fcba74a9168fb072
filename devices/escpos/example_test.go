package escpos_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"time"

	"onecard/devices"
	"onecard/devices/escpos"
)

// Printing a receipt on the kiosk's printer.
func Example() {
	port, err := devices.OpenSerial(devices.SerialConfig{Path: "/dev/ttyUSB0", Baud: 9600})
	if err != nil {
		log.Fatal(err)
	}
	defer port.Close()
	p := escpos.New(port, &escpos.Opts{Baud: 9600})
	defer p.Close()

	job, err := new(escpos.Builder).Init().
		Align(escpos.Center).Bold(true).Size(2, 2).Line("物业收费收据").
		Bold(false).Size(1, 1).Align(escpos.Left).
		Line("房号: 3-1-502").
		Line("合计: ￥1,200.00 (壹仟贰佰元整)").
		Align(escpos.Center).QR("https://pay.example/r/0000123", 6, escpos.QRLevelM).
		Feed(3).Cut(escpos.PartialCut).
		Bytes()
	if err != nil {
		log.Fatal(err)
	}
	err = p.Print(context.Background(), job)
	switch {
	case errors.Is(err, escpos.ErrPaperOut):
		fmt.Println("load a new paper roll")
	case errors.Is(err, escpos.ErrCoverOpen):
		fmt.Println("close the printer's cover")
	case errors.Is(err, devices.ErrTimeout):
		fmt.Println("the printer does not answer: is it on and cabled?")
	case err != nil:
		log.Fatal(err)
	}
}

// Keeping the printer connected: the session makes a driver on each fresh
// port, prints the jobs that come and checks the status between them, so
// that an unplugged adapter is noticed and the port reopened.
func Example_port() {
	jobs := make(chan []byte)
	cfg := devices.SerialConfig{Path: "/dev/ttyUSB0", Baud: 9600}
	port := devices.NewPort("kiosk printer", func() (io.ReadWriteCloser, error) {
		return devices.OpenSerial(cfg)
	}, slog.Default())
	port.Run(context.Background(), func(ctx context.Context, rw io.ReadWriter) error {
		p := escpos.New(rw, &escpos.Opts{Baud: cfg.Baud})
		defer p.Close()
		poll := time.NewTicker(5 * time.Second)
		defer poll.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-poll.C:
				st, err := p.Status(ctx)
				if errors.Is(err, devices.ErrPortFailed) {
					return err
				}
				slog.Debug("printer", "status", st, "err", err)
			case job := <-jobs:
				err := p.Print(ctx, job)
				if errors.Is(err, devices.ErrPortFailed) {
					return err // reopen; the job goes back to the outbox
				}
				slog.Info("receipt", "err", err)
			}
		}
	})
}

func ExampleDecode() {
	job, _ := new(escpos.Builder).Init().
		Align(escpos.Center).Bold(true).Line("收据").
		QR("R-0001", 4, escpos.QRLevelM).
		Cut(escpos.FullCut).Bytes()
	for _, b := range escpos.Decode(job) {
		switch b := b.(type) {
		case escpos.Line:
			fmt.Printf("line %v %q bold=%t\n", b.Align, b.Text(), b.Spans[0].Bold)
		case escpos.QR:
			fmt.Printf("QR %q module %d level %v\n", b.Data, b.Module, b.Level)
		case escpos.Cut:
			fmt.Printf("%v cut\n", b.Mode)
		}
	}
	// Output:
	// line center "收据" bold=true
	// QR "R-0001" module 4 level M
	// full cut
}
