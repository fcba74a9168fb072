package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"onecard/auth"
	"onecard/billing"
	"onecard/demo"
	"onecard/devices/payterm"
	"onecard/estate"
	firmwaresim "onecard/firmware-sim"
	printersim "onecard/firmware-sim/printer"
	"onecard/printing"
	"onecard/store"
	"onecard/terminal"
)

// books is billing with its devices.
type books struct {
	*billing.Service
	printer  *printing.Printer  // nil without one
	terminal *terminal.Terminal // nil without one
}

// startBilling opens the books, connects the receipt printer and the
// payment terminal (in the demo, simulated ones on ptys), and runs the
// print worker and the resolver of card payments left waiting.
func startBilling(ctx context.Context, c *config, db *store.DB, es *estate.Service, as *auth.Service, isDemo bool, log *slog.Logger) (*books, error) {
	bk := &books{}
	if isDemo && c.Printer == "" {
		link, err := startDemoPrinter(ctx, c.DataDir, c.PrinterBaud, log)
		if err != nil {
			return nil, err
		}
		c.Printer = link
	}
	if isDemo && c.Payterm == "" {
		link, stop, err := startDemoTerminal(ctx, c.DataDir, c.PaytermBaud, log)
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, stop)
		c.Payterm = link
	}
	o := billing.Options{Log: log}
	if c.Payterm != "" {
		bk.terminal = terminal.Open(ctx, c.Payterm, &payterm.Opts{Baud: c.PaytermBaud}, log)
		o.Terminal = bk.terminal
	}
	var err error
	if bk.Service, err = billing.Open(ctx, db, es.Site(), o); err != nil {
		return nil, err
	}
	if isDemo {
		cashier, err := as.StaffByUsername(ctx, "cashier")
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if err := demo.SeedBilling(ctx, bk.Service, es, cashier.ID); err != nil {
			return nil, err
		}
		log.Debug("demo books ready", "took", time.Since(start).Round(time.Millisecond))
	}
	if c.Printer != "" {
		bk.printer = printing.Open(ctx, c.Printer, c.PrinterBaud, log)
		go bk.RunPrinter(ctx, bk.printer)
	}
	go bk.RunResolver(ctx, 30*time.Second)
	return bk, nil
}

// startDemoPrinter runs a simulated receipt printer on a pty linked at
// DATA_DIR/printer.pty; it writes each receipt to DATA_DIR/receipts as
// text and as an image.
func startDemoPrinter(ctx context.Context, dataDir string, baud int, log *slog.Logger) (string, error) {
	link := filepath.Join(dataDir, "printer.pty")
	pty, err := firmwaresim.OpenPTY(link)
	if err != nil {
		return "", err
	}
	sim := printersim.New(printersim.Options{Baud: baud, Dir: filepath.Join(dataDir, "receipts"), Log: log.With("sim", "printer")})
	go func() {
		if err := sim.Serve(ctx, pty); err != nil && ctx.Err() == nil {
			log.Error("simulated printer stopped", "err", err)
		}
		pty.Close()
	}()
	return link, nil
}
