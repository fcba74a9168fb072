package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"onecard/auth"
	"onecard/billing"
	"onecard/demo"
	"onecard/devices/payterm"
	"onecard/estate"
	firmwaresim "onecard/firmware-sim"
	gatewaysim "onecard/firmware-sim/gateway"
	printersim "onecard/firmware-sim/printer"
	"onecard/gateway"
	"onecard/printing"
	"onecard/store"
	"onecard/terminal"
)

// books is billing with its devices.
type books struct {
	*billing.Service
	printer  *printing.Printer  // nil without one
	terminal *terminal.Terminal // nil without one
	gateway  gateway.Provider   // nil without one
	// The kiosks' printers and terminals by name.
	printers  map[string]*printing.Printer
	terminals map[string]*terminal.Terminal
}

// demoKioskDevices names the demo kiosk's own printer and terminal.
const demoKioskDevices = "lobby-1"

// namedPorts parses NAME=PORT,NAME=PORT.
func namedPorts(flagName, v string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, port, ok := strings.Cut(item, "=")
		name, port = strings.TrimSpace(name), strings.TrimSpace(port)
		if !ok || !deviceName.MatchString(name) || port == "" {
			return nil, fmt.Errorf("--%s: %q is not NAME=PORT (a name of lower-case letters, digits and dashes)", flagName, item)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--%s: %q is named twice", flagName, name)
		}
		out[name] = port
	}
	return out, nil
}

var deviceName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// startBilling opens the books, connects the receipt printer and the
// payment terminal (in the demo, simulated ones on ptys), and runs the
// print worker and the resolver of card payments left waiting.
func startBilling(ctx context.Context, c *config, db *store.DB, es *estate.Service, as *auth.Service, isDemo bool, log *slog.Logger) (*books, error) {
	bk := &books{printers: map[string]*printing.Printer{}, terminals: map[string]*terminal.Terminal{}}
	kioskPrinters, err := namedPorts("kiosk-printers", c.KioskPrinters)
	if err != nil {
		return nil, err
	}
	kioskPayterms, err := namedPorts("kiosk-payterms", c.KioskPayterms)
	if err != nil {
		return nil, err
	}
	if isDemo && c.KioskPrinters == "" {
		// The lobby kiosk's own printer: its receipts in kiosk-receipts/.
		link, err := startDemoPrinterAt(ctx, filepath.Join(c.DataDir, demoKioskDevices+"-printer.pty"), filepath.Join(c.DataDir, "kiosk-receipts"), c.PrinterBaud, log)
		if err != nil {
			return nil, err
		}
		kioskPrinters[demoKioskDevices] = link
	}
	if isDemo && c.KioskPayterms == "" {
		link, stop, err := startDemoTerminalAt(ctx, filepath.Join(c.DataDir, demoKioskDevices+"-payterm.pty"),
			filepath.Join(c.DataDir, demoKioskDevices+"-payterm-journal.json"), c.PaytermBaud, log)
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, stop)
		kioskPayterms[demoKioskDevices] = link
	}
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
	if isDemo && c.Gateway == "" {
		if err := startDemoGateway(ctx, c, log); err != nil {
			return nil, err
		}
	}
	if c.Gateway != "" {
		gw, err := openGateway(c)
		if err != nil {
			return nil, err
		}
		bk.gateway, o.Gateway, o.NotifyURL = gw, gw, strings.TrimRight(c.PublicURL, "/")+"/gateway/notify"
	}
	if c.Payterm != "" {
		bk.terminal = terminal.Open(ctx, c.Payterm, &payterm.Opts{Baud: c.PaytermBaud}, log)
		o.Terminal = bk.terminal
	}
	o.Terminals = map[string]billing.Terminal{}
	for name, port := range kioskPayterms {
		bk.terminals[name] = terminal.Open(ctx, port, &payterm.Opts{Baud: c.PaytermBaud}, log.With("kiosk_terminal", name))
		o.Terminals[name] = bk.terminals[name]
	}
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
	for name, port := range kioskPrinters {
		bk.printers[name] = printing.Open(ctx, port, c.PrinterBaud, log.With("kiosk_printer", name))
		go bk.RunPrinterNamed(ctx, name, bk.printers[name])
	}
	go bk.RunResolver(ctx, 30*time.Second)
	return bk, nil
}

// startDemoPrinter runs a simulated receipt printer on a pty linked at
// DATA_DIR/printer.pty; it writes each receipt to DATA_DIR/receipts as
// text and as an image.
func startDemoPrinter(ctx context.Context, dataDir string, baud int, log *slog.Logger) (string, error) {
	return startDemoPrinterAt(ctx, filepath.Join(dataDir, "printer.pty"), filepath.Join(dataDir, "receipts"), baud, log)
}

// startDemoPrinterAt runs a simulated receipt printer on a pty linked at
// link, writing its receipts to dir.
func startDemoPrinterAt(ctx context.Context, link, dir string, baud int, log *slog.Logger) (string, error) {
	pty, err := firmwaresim.OpenPTY(link)
	if err != nil {
		return "", err
	}
	sim := printersim.New(printersim.Options{Baud: baud, Dir: dir, Log: log.With("sim", "printer", "pty", filepath.Base(link))})
	go func() {
		if err := sim.Serve(ctx, pty); err != nil && ctx.Err() == nil {
			log.Error("simulated printer stopped", "err", err)
		}
		pty.Close()
	}()
	return link, nil
}

// openGateway connects to the QR payment gateway configured.
func openGateway(c *config) (*gateway.Client, error) {
	if c.PublicURL == "" {
		return nil, fmt.Errorf("--gateway needs --public-url: where the gateway sends its notifications")
	}
	key, err := gateway.LoadPrivateKey(c.GatewayKey)
	if err != nil {
		return nil, fmt.Errorf("--gateway-key-file: %w", err)
	}
	pub, err := gateway.LoadPublicKey(c.GatewayPub)
	if err != nil {
		return nil, fmt.Errorf("--gateway-public-key-file: %w", err)
	}
	return gateway.NewClient(gateway.Config{URL: c.Gateway, Merchant: c.GatewayMerchant, Key: key, GatewayKeys: []ed25519.PublicKey{pub}})
}

// startDemoGateway runs a simulated QR payment gateway on 127.0.0.1, with
// the demo's merchant key in DATA_DIR/gateway, and points the options at
// it: the kiosk's QR code opens the simulator's payment page.
func startDemoGateway(ctx context.Context, c *config, log *slog.Logger) error {
	dir := filepath.Join(c.DataDir, "gateway")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, _, err := gateway.LoadOrCreatePrivateKey(filepath.Join(dir, "merchant.pem"))
	if err != nil {
		return err
	}
	sim, err := gatewaysim.Start(gatewaysim.Options{Merchants: map[string]ed25519.PublicKey{"demo": key.Public().(ed25519.PublicKey)},
		Log: log.With("sim", "gateway")})
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { sim.Stop() })
	pub := filepath.Join(dir, "gateway.pub")
	if err := os.WriteFile(pub, gateway.EncodePublicKey(sim.PublicKey()), 0o600); err != nil {
		return err
	}
	c.Gateway, c.GatewayMerchant, c.GatewayKey, c.GatewayPub = sim.URL(), "demo", filepath.Join(dir, "merchant.pem"), pub
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	return nil
}
