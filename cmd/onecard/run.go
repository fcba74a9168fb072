package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"

	"onecard/auth"
	"onecard/cards"
	"onecard/demo"
	"onecard/estate"
	"onecard/fleet"
	"onecard/kiosk"
	"onecard/passes"
	"onecard/server"
	"onecard/store"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `onecard runs an estate's customer-service back office.

Usage:
  onecard serve     run the server (production)
  onecard demo      run the whole estate on embedded defaults with demo data
  onecard migrate   apply database migrations and exit
  onecard user      manage staff accounts (add, reset-password, list)
  onecard devices   register readers and turnstiles (add, list, disable, mosquitto-config)
  onecard billing   make the month's bills (generate), list arrears
  onecard version   print the version

Run "onecard COMMAND --help" for a command's options. Every option can also
be set by an environment variable ONECARD_<OPTION> or read from a file named
by ONECARD_<OPTION>_FILE.
`

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = serve(rest, false)
	case "demo":
		err = serve(rest, true)
	case "migrate":
		err = migrate(rest)
	case "user":
		err = user(rest)
	case "devices":
		err = devicesCmd(rest)
	case "billing":
		err = billingCmd(rest)
	case "version", "--version", "-version":
		fmt.Println("onecard", version)
	case "help", "--help", "-h", "-help":
		fmt.Print(usage)
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	if isHelp(err) {
		return nil
	}
	return err
}

var serveOptions = []string{"addr", "data-dir", "db", "site", "site-name", "time-zone", "log-level", "log-format",
	"tls-cert", "tls-key", "secure-cookies", "shutdown-timeout", "login-limit",
	"encoder", "encoder-baud", "card-sector", "card-master-key-file", "card-mac-key-file",
	"mqtt", "mqtt-listen", "mqtt-user", "mqtt-password", "mqtt-tls-cert", "mqtt-tls-key", "monitor-password", "memory-limit",
	"printer", "printer-baud", "payterm", "payterm-baud", "kiosk-printers", "kiosk-payterms", "holidays",
	"pass-key-file", "gates", "pass-retention",
	"locker", "locker-baud", "locker-doors", "scanner", "scanner-baud", "mail-webhook", "mail-webhook-secret-file",
	"gateway", "gateway-merchant", "gateway-key-file", "gateway-public-key-file", "public-url"}

func newLogger(c *config) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.LogLevel, err)
	}
	o := &slog.HandlerOptions{Level: lvl}
	switch c.LogFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, o)), nil
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, o)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", c.LogFormat)
}

// openDB opens and migrates the database.
func openDB(ctx context.Context, c *config, log *slog.Logger) (*store.DB, error) {
	db, err := store.Open(ctx, store.Options{URL: c.DB, DataDir: c.DataDir})
	if err != nil {
		return nil, err
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	for _, m := range applied {
		log.Info("migration applied", "name", m)
	}
	return db, nil
}

func serve(args []string, isDemo bool) error {
	c := &config{}
	name := "serve"
	if isDemo {
		name = "demo"
	}
	fs := flag.NewFlagSet("onecard "+name, flag.ContinueOnError)
	fs.Usage = func() {
		if isDemo {
			fmt.Fprintln(fs.Output(), "Usage: onecard demo [options]\n\nRuns the whole estate on one machine: SQLite in the data directory, demo data\n(created once, kept on later runs) and one login per staff role.\n\nOptions:")
		} else {
			fmt.Fprintln(fs.Output(), "Usage: onecard serve [options]\n\nOptions:")
		}
		fs.PrintDefaults()
	}
	if err := parse(fs, c, serveOptions, args, os.Stderr); err != nil {
		return err
	}
	if isDemo {
		if !flagOrEnvSet(fs, "data-dir") {
			c.DataDir = "onecard-demo"
		}
		if !flagOrEnvSet(fs, "site") {
			c.Site, c.SiteName = "demo", "翠湖花园"
		}
		c.mqttListenFallback = !flagOrEnvSet(fs, "mqtt-listen")
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	if err := setMemoryLimit(c, log); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, err := openDB(ctx, c, log)
	if err != nil {
		return err
	}
	defer db.Close()
	es, err := estate.Open(ctx, db, c.Site, c.SiteName, c.TimeZone)
	if err != nil {
		return err
	}
	as := auth.New(db, auth.DefaultPolicy)
	var logins []demo.Login
	if isDemo {
		if logins, err = demo.Seed(ctx, as, es); err != nil {
			return err
		}
	}
	keys, err := cards.LoadKeys(cards.KeyFiles{DataDir: c.DataDir, MasterFile: c.CardMasterKey, MACFile: c.CardMACKey})
	if err != nil {
		return err
	}
	hw := &demoHardware{}
	if isDemo && c.Encoder == "" {
		// The demo's encoder is a simulated PN532 on a pty, driven through
		// the same serial path as a real one.
		link, stopSim, err := startDemoEncoder(ctx, c.DataDir, c.EncoderBaud, log, hw)
		if err != nil {
			return err
		}
		defer stopSim()
		c.Encoder = link
	}
	var station *cards.Station
	if c.Encoder != "" {
		station = cards.NewStation(c.Encoder)
		runEncoder(ctx, c, keys, station, log)
	}
	books, err := startBilling(ctx, c, db, es, as, isDemo, log)
	if err != nil {
		return err
	}
	passKey, err := passes.LoadKey(c.PassKey, c.DataDir)
	if err != nil {
		return err
	}
	gatePasses, err := passes.Open(passes.Deps{DB: db, Estate: es, Billing: books.Service, Key: passKey, Gates: splitList(c.Gates),
		Retention: c.PassRetention, Log: log.With("part", "passes")})
	if err != nil {
		return err
	}
	go purgePasses(ctx, gatePasses, log.With("part", "passes"))
	mailRoom, err := startMail(ctx, c, db, es, isDemo, log)
	if err != nil {
		return err
	}
	hw.locker, hw.scanner = mailRoom.lockerSim, mailRoom.scannerSim
	var scans func() (<-chan string, func())
	if mailRoom.scans != nil {
		scans = mailRoom.scans.Watch
	}
	stopping := make(chan struct{})
	fl, err := startFleet(ctx, c, db, es.Site().ID, es.Site().Code, log, gatePasses)
	if err != nil {
		return err
	}
	defer fl.close()
	if isDemo {
		stopReaders, err := startDemoReaders(ctx, fl, c.DataDir, es.Site().Code, log, hw)
		if err != nil {
			return err
		}
		defer stopReaders()
	}
	register, err := cards.OpenRegister(ctx, cards.RegisterDeps{DB: db, Estate: es, Billing: books.Service, Fleet: fl.Service, Station: station, Keys: keys})
	if err != nil {
		return err
	}
	kiosks := kiosk.New(db, es, kiosk.Options{})
	var demoKiosk demoKioskInfo
	if isDemo {
		if demoKiosk, err = setUpDemoKiosk(ctx, kiosks, books, register, es, hw); err != nil {
			return err
		}
	}
	app, err := server.New(server.Deps{DB: db, Auth: as, Estate: es, Log: log, Cards: register, Kiosks: kiosks,
		SecureCookies: c.SecureCookies || c.TLSCert != "", LoginLimit: c.LoginLimit, Encoder: station,
		Fleet: fl.Service, BrokerUp: fl.Bus.Connected, BrokerStats: fl.brokerStats(), Stopping: stopping,
		Billing: books.Service, Printer: books.printer, Terminal: books.terminal, Printers: books.printers, Terminals: books.terminals, Passes: gatePasses, Mail: mailRoom.Service, Scans: scans, Demo: hw.desk(), Gateway: books.gateway})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another onecard running? choose another with --addr)", c.Addr, err)
	}
	scheme := "http"
	if c.TLSCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	if isDemo {
		monitor := ""
		if fl.Broker != nil {
			monitor = fmt.Sprintf("mosquitto_sub -h %s -p %s -u %s -P %s -t 'onecard/v1/#' -v",
				hostOf(fl.Broker.Addr()), portOf(fl.Broker.Addr()), fleet.MonitorUser, fl.MonitorSecret)
		}
		printDemo(os.Stdout, base, es.Site(), logins, monitor, demoKiosk)
	}
	log.Info("onecard serving", "url", base, "db", db.Dialect, "site", es.Site().Code, "version", version)
	errc := make(chan error, 1)
	go func() {
		if c.TLSCert != "" {
			ln.Close()
			errc <- app.ListenTLS(c.Addr, c.TLSCert, c.TLSKey)
			return
		}
		errc <- app.Listener(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: letting in-flight requests finish", "timeout", c.ShutdownTimeout)
	close(stopping)
	if err := app.ShutdownWithTimeout(c.ShutdownTimeout); err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}

func flagOrEnvSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	_, env := os.LookupEnv(envName(name))
	_, file := os.LookupEnv(envName(name) + "_FILE")
	return set || env || file
}

func printDemo(w io.Writer, base string, site estate.Site, logins []demo.Login, monitor string, k demoKioskInfo) {
	fmt.Fprintf(w, "\nonecard demo: %s (%s) is running.\n\n", site.Name, site.Code)
	fmt.Fprintf(w, "  Desk login   %s/login\n", base)
	fmt.Fprintf(w, "  Health       %s/healthz   %s/readyz\n", base, base)
	fmt.Fprintf(w, "  Metrics      %s/metrics\n", base)
	fmt.Fprintf(w, "  API          %s/api/v1/openapi.json\n", base)
	if monitor != "" {
		fmt.Fprintf(w, "  MQTT (read)  %s\n", monitor)
	}
	if k.Code != "" {
		fmt.Fprintf(w, "  Kiosk        %s/kiosk/enrol?code=%s\n", base, k.Code)
		fmt.Fprintf(w, "               (makes your browser the demo kiosk; then enter unit %s and PIN %s)\n", k.Unit, k.PIN)
		if k.Card != "" {
			fmt.Fprintf(w, "               or tap the owner's card %s on the kiosk reader: %s/cards/%d (demo box, as clerk)\n", k.Card, base, k.CardID)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  role\tusername\tpassword")
	for _, l := range logins {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.Role, l.Username, l.Password)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nPress Ctrl+C to stop; the data stays in the data directory for the next run.")
}

func migrate(args []string) error {
	c := &config{}
	fs := flag.NewFlagSet("onecard migrate", flag.ContinueOnError)
	if err := parse(fs, c, []string{"data-dir", "db", "log-level", "log-format"}, args, os.Stderr); err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{URL: c.DB, DataDir: c.DataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	for _, m := range applied {
		log.Info("migration applied", "name", m)
	}
	v, err := db.Version(ctx)
	if err != nil {
		return err
	}
	log.Info("database migrated", "applied", len(applied), "version", v, "db", db.Dialect)
	fmt.Printf("schema version %d (%d migrations applied now)\n", v, len(applied))
	return nil
}

const userUsage = `Usage:
  onecard user add --username NAME --role ROLE [--display-name TEXT] [--password-file FILE]
  onecard user reset-password --username NAME [--password-file FILE]
  onecard user list

Roles: admin, supervisor, clerk, cashier, guard. Without --password-file a
strong password is generated and printed once. Database options (--db,
--data-dir) as for serve.
`

func user(args []string) error {
	action, rest, err := splitAction(args, "user", userUsage)
	if action == "" {
		return err
	}
	c := &config{}
	fs := flag.NewFlagSet("onecard user "+action, flag.ContinueOnError)
	username := fs.String("username", "", "staff username")
	role := fs.String("role", "", "role: admin, supervisor, clerk, cashier, guard")
	display := fs.String("display-name", "", "name shown on screens")
	pwFile := fs.String("password-file", "", "read the password from this file (- for standard input)")
	if err := parse(fs, c, []string{"data-dir", "db"}, rest, os.Stderr); err != nil {
		return err
	}
	ctx := context.Background()
	db, err := openDB(ctx, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer db.Close()
	as := auth.New(db, auth.DefaultPolicy)
	password := func() (string, bool, error) {
		if *pwFile == "" {
			b := make([]byte, 12)
			_, _ = rand.Read(b)
			return base64.RawURLEncoding.EncodeToString(b), true, nil
		}
		var b []byte
		var err error
		if *pwFile == "-" {
			b, err = io.ReadAll(io.LimitReader(os.Stdin, 1024))
		} else {
			b, err = os.ReadFile(*pwFile)
		}
		return strings.TrimRight(string(b), "\r\n"), false, err
	}
	switch action {
	case "add":
		pw, generated, err := password()
		if err != nil {
			return err
		}
		s, err := as.CreateStaff(ctx, auth.NewStaff{Username: *username, DisplayName: *display, Role: auth.Role(*role), Password: pw})
		if err != nil {
			return fmt.Errorf("user add: %w", err)
		}
		fmt.Printf("added %s (%s)\n", s.Username, s.Role)
		if generated {
			fmt.Printf("password: %s\n", pw)
		}
	case "reset-password":
		pw, generated, err := password()
		if err != nil {
			return err
		}
		if err := as.ResetPassword(ctx, *username, pw); err != nil {
			return fmt.Errorf("user reset-password: %w", err)
		}
		fmt.Printf("password of %s reset; their sessions are ended\n", *username)
		if generated {
			fmt.Printf("password: %s\n", pw)
		}
	case "list":
		list, err := as.ListStaff(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tROLE\tNAME\tSTATE")
		for _, s := range list {
			state := "active"
			if s.Disabled {
				state = "disabled"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Username, s.Role, s.DisplayName, state)
		}
		tw.Flush()
	default:
		fmt.Print(userUsage)
		return fmt.Errorf("user: unknown action %q", action)
	}
	return nil
}

// setMemoryLimit gives the Go runtime a soft memory limit, so the heap
// stays near what is live instead of growing to twice that between
// collections (docs/operations.md). GOMEMLIMIT, if set, wins.
func setMemoryLimit(c *config, log *slog.Logger) error {
	limit, err := parseSize(c.MemoryLimit)
	if err != nil {
		return fmt.Errorf("--memory-limit: %w", err)
	}
	if os.Getenv("GOMEMLIMIT") != "" || limit == 0 {
		return nil
	}
	debug.SetMemoryLimit(limit)
	log.Debug("memory limit set", "bytes", limit)
	return nil
}
