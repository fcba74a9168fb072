package main

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"

	"onecard/firmware-sim/reader"
)

// startDemoReaders runs the demo's simulated readers against the broker,
// each with its state file under DATA_DIR/readers.
func startDemoReaders(ctx context.Context, fl *fleetRuntime, dataDir, site string, log *slog.Logger, hw *demoHardware) (func(), error) {
	secrets, err := demoDeviceSecrets(ctx, fl.Service, dataDir)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, d := range demoReaders {
		r, err := reader.New(reader.Options{Broker: fl.URL, Site: site, ID: d.Code, Secret: secrets[d.Code], Zone: d.Zones[0],
			StateFile: filepath.Join(dataDir, "readers", d.Code+".json"), Log: log.With("sim", d.Code)})
		if err != nil {
			cancel()
			return nil, err
		}
		hw.addReader(d.Code, d.Name, d.Kind, r)
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(rctx) }()
	}
	return func() { cancel(); wg.Wait() }, nil
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
