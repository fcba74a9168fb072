package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	firmwaresim "onecard/firmware-sim"
	paytermsim "onecard/firmware-sim/payterm"
)

// startDemoTerminal runs a simulated terminal on a pty linked at
// DATA_DIR/payterm.pty, its journal kept in DATA_DIR/payterm-journal.json.
func startDemoTerminal(ctx context.Context, dataDir string, baud int, log *slog.Logger) (string, func(), error) {
	return startDemoTerminalAt(ctx, filepath.Join(dataDir, "payterm.pty"), filepath.Join(dataDir, "payterm-journal.json"), baud, log)
}

// startDemoTerminalAt runs a simulated terminal on a pty linked at link,
// its journal kept in journal.
func startDemoTerminalAt(ctx context.Context, link, journal string, baud int, log *slog.Logger) (string, func(), error) {
	pty, err := firmwaresim.OpenPTY(link)
	if err != nil {
		return "", nil, err
	}
	sim, err := paytermsim.New(paytermsim.Options{Baud: baud, Delay: 2 * time.Second,
		JournalFile: journal, Log: log.With("sim", "payterm", "pty", filepath.Base(link))})
	if err != nil {
		pty.Close()
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sim.Serve(sctx, pty); err != nil && sctx.Err() == nil {
			log.Error("simulated payment terminal stopped", "err", err)
		}
	}()
	return link, func() {
		cancel()
		<-done
		pty.Close()
	}, nil
}
