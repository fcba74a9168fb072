package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"onecard/auth"
	"onecard/devices"
	"onecard/devices/scanner"
	"onecard/estate"
	firmwaresim "onecard/firmware-sim"
	lockersim "onecard/firmware-sim/locker"
	scannersim "onecard/firmware-sim/scanner"
	"onecard/lockers"
	"onecard/mailroom"
	"onecard/store"
)

// mail is the mail room with its devices.
type mail struct {
	*mailroom.Service
	bank  *lockers.Bank // nil without a locker bank
	scans *scanner.Feed // nil without a scanner
	// In the demo: the simulated bank and scanner.
	lockerSim  *lockersim.Sim
	scannerSim *scannersim.Sim
}

// startMail opens the mail room, connects the locker bank and the desk's
// barcode scanner (in the demo, simulated ones on ptys: a 48-door bank and
// a scanner), and runs its workers: the locker, the notifier, and the daily
// reminders and signature purge.
func startMail(ctx context.Context, c *config, db *store.DB, es *estate.Service, isDemo bool, log *slog.Logger) (*mail, error) {
	m := &mail{}
	log = log.With("part", "mail")
	if isDemo && c.Locker == "" {
		link := filepath.Join(c.DataDir, "locker.pty")
		pty, err := firmwaresim.OpenPTY(link)
		if err != nil {
			return nil, err
		}
		closer := &demoCloser{}
		m.lockerSim = lockersim.New(lockersim.Options{Doors: c.LockerDoors, Baud: c.LockerBaud, PopDelay: 50 * time.Millisecond,
			OnUnlock: closer.unlocked, Log: log.With("sim", "locker")})
		closer.sim = m.lockerSim
		go func() {
			if err := m.lockerSim.Serve(ctx, pty); err != nil && ctx.Err() == nil {
				log.Error("simulated locker bank stopped", "err", err)
			}
			pty.Close()
		}()
		c.Locker = link
	}
	if isDemo && c.Scanner == "" {
		link := filepath.Join(c.DataDir, "scanner.pty")
		pty, err := firmwaresim.OpenPTY(link)
		if err != nil {
			return nil, err
		}
		m.scannerSim = scannersim.New(scannersim.Options{Baud: c.ScannerBaud, Log: log.With("sim", "scanner")})
		go func() {
			if err := m.scannerSim.Serve(ctx, pty); err != nil && ctx.Err() == nil {
				log.Error("simulated scanner stopped", "err", err)
			}
			pty.Close()
		}()
		c.Scanner = link
	}
	o := mailroom.Options{Log: log}
	if c.Locker != "" {
		m.bank = lockers.Open(ctx, c.Locker, c.LockerDoors, c.LockerBaud, log)
		o.Locker = m.bank
	}
	var err error
	if m.Service, err = mailroom.Open(ctx, db, es.Site(), o); err != nil {
		return nil, err
	}
	if m.bank != nil {
		doors, err := m.Doors(ctx)
		if err != nil {
			return nil, err
		}
		if err := m.InitDoors(ctx, c.LockerDoors); err != nil {
			return nil, err
		}
		if isDemo && len(doors) == 0 {
			// The demo estate lets parcels and express go through its
			// lockers (the owner identified at the kiosk, or with the code,
			// collects them); registered letters and remittance slips are
			// still signed for at the desk (SOP §3's default keeps all four
			// at the desk: an estate opts in on the mail-room settings).
			setup := auth.WithActor(ctx, auth.Actor{Kind: "staff", Name: "demo setup", Role: auth.Admin})
			st, err := m.Settings(setup)
			if err == nil {
				st.SignatureTypes = []string{mailroom.Registered, mailroom.Remittance}
				err = m.SaveSettings(setup, st)
			}
			if err != nil {
				return nil, fmt.Errorf("demo mail-room settings: %w", err)
			}
		}
		go func() {
			if err := m.RunLocker(ctx); err != nil && ctx.Err() == nil {
				log.Error("mail room locker worker stopped", "err", err)
			}
		}()
	}
	if c.Scanner != "" {
		m.scans = runScanner(ctx, c.Scanner, c.ScannerBaud, log)
	}
	var n mailroom.Notifier = mailroom.ConsoleNotifier{Log: log}
	if c.MailWebhook != "" {
		secret, err := os.ReadFile(c.MailWebhookSecret)
		if c.MailWebhookSecret == "" || err != nil {
			return nil, fmt.Errorf("--mail-webhook needs --mail-webhook-secret-file (the key its requests are signed with): %v", err)
		}
		n = &mailroom.WebhookNotifier{URL: c.MailWebhook, Secret: []byte(strings.TrimSpace(string(secret)))}
	}
	go func() {
		if err := m.RunNotifier(ctx, n); err != nil && ctx.Err() == nil {
			log.Error("mail room notifier stopped", "err", err)
		}
	}()
	go m.daily(ctx, log)
	return m, nil
}

// demoDoorClose is how long a demo locker door stays open before the
// demo closes it, as the person who opened it would.
const demoDoorClose = 8 * time.Second

// demoCloser closes the demo bank's doors demoDoorClose after they were
// unlocked (the desk's demo box closes them sooner).
type demoCloser struct {
	sim    *lockersim.Sim
	mu     sync.Mutex
	timers map[int]*time.Timer
}

func (d *demoCloser) unlocked(door int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timers == nil {
		d.timers = map[int]*time.Timer{}
	}
	if t := d.timers[door]; t != nil {
		t.Stop()
	}
	d.timers[door] = time.AfterFunc(demoDoorClose, func() { d.sim.Close(door) })
}

// daily sends the reminders of items not collected and blanks signatures
// past their retention, at start and then every day.
func (m *mail) daily(ctx context.Context, log *slog.Logger) {
	sys := auth.WithActor(ctx, auth.System)
	for {
		if items, err := m.Reminders(sys, time.Now()); err != nil && ctx.Err() == nil {
			log.Warn("mail room reminders", "err", err)
		} else if len(items) > 0 {
			log.Info("mail room reminders sent", "items", len(items))
		}
		if _, err := m.PurgeSignatures(sys, time.Now()); err != nil && ctx.Err() == nil {
			log.Warn("mail room signatures", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(24 * time.Hour):
		}
	}
}

// runScanner keeps the desk's barcode scanner on path open and feeds its
// codes (normalised; bad lines logged and skipped).
func runScanner(ctx context.Context, path string, baud int, log *slog.Logger) *scanner.Feed {
	f := &scanner.Feed{}
	open := func() (io.ReadWriteCloser, error) {
		return devices.OpenSerial(devices.SerialConfig{Path: path, Baud: baud, ReadTimeout: 100 * time.Millisecond})
	}
	port := devices.NewPort("barcode scanner "+path, open, log)
	go port.Run(ctx, func(ctx context.Context, rw io.ReadWriter) error {
		sc := scanner.New(rw, nil)
		defer sc.Close()
		log.Info("barcode scanner connected", "port", path)
		return f.Read(ctx, sc, func(err error) { log.Warn("barcode scanner: line rejected", "err", err) })
	})
	return f
}
