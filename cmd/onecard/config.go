package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is every option of every subcommand. Each is a flag, an
// environment variable ONECARD_<NAME>, or a file named by
// ONECARD_<NAME>_FILE (for secrets); a flag wins over the environment.
type config struct {
	Addr              string
	DataDir           string
	DB                string
	Site              string
	SiteName          string
	TimeZone          string
	LogLevel          string
	LogFormat         string
	TLSCert           string
	TLSKey            string
	SecureCookies     bool
	ShutdownTimeout   time.Duration
	LoginLimit        int
	Encoder           string
	EncoderBaud       int
	CardSector        int
	CardMasterKey     string
	CardMACKey        string
	MQTT              string
	MQTTListen        string
	MQTTUser          string
	MQTTPassword      string
	MonitorPassword   string
	MQTTTLSCert       string
	MQTTTLSKey        string
	MemoryLimit       string
	Holidays          string
	Gateway           string
	GatewayMerchant   string
	GatewayKey        string
	GatewayPub        string
	PublicURL         string
	Printer           string
	PrinterBaud       int
	Payterm           string
	KioskPrinters     string
	PassKey           string
	Locker            string
	LockerBaud        int
	LockerDoors       int
	Scanner           string
	ScannerBaud       int
	MailWebhook       string
	MailWebhookSecret string
	Gates             string
	PassRetention     time.Duration
	KioskPayterms     string
	PaytermBaud       int
	// mqttListenFallback lets the demo take any free port when the
	// default MQTT port is taken.
	mqttListenFallback bool
}

type option struct {
	name, help string
	bind       func(fs *flag.FlagSet, name, help string)
}

func options(c *config) []option {
	str := func(p *string, def string) func(*flag.FlagSet, string, string) {
		return func(fs *flag.FlagSet, n, h string) { fs.StringVar(p, n, def, h) }
	}
	return []option{
		{"addr", "address to listen on (host:port)", str(&c.Addr, "127.0.0.1:8080")},
		{"data-dir", "directory for the SQLite database and site key files", str(&c.DataDir, "onecard-data")},
		{"db", "database: postgres://user@host/db?sslmode=… for PostgreSQL; empty for SQLite in the data directory", str(&c.DB, "")},
		{"site", "site code (short, stable; used in device topics)", str(&c.Site, "main")},
		{"site-name", "site name shown on screens and receipts (first start only)", str(&c.SiteName, "小区")},
		{"time-zone", "the site's time zone for business days and displayed times", str(&c.TimeZone, "Asia/Shanghai")},
		{"log-level", "log level: debug, info, warn, error", str(&c.LogLevel, "info")},
		{"log-format", "log format: text or json", str(&c.LogFormat, "text")},
		{"tls-cert", "TLS certificate file (serve HTTPS; cookies become Secure)", str(&c.TLSCert, "")},
		{"tls-key", "TLS private key file", str(&c.TLSKey, "")},
		{"secure-cookies", "mark cookies Secure (set when a TLS proxy fronts onecard)", func(fs *flag.FlagSet, n, h string) {
			fs.BoolVar(&c.SecureCookies, n, false, h)
		}},
		{"shutdown-timeout", "how long in-flight requests may take to finish on SIGTERM", func(fs *flag.FlagSet, n, h string) {
			fs.DurationVar(&c.ShutdownTimeout, n, 15*time.Second, h)
		}},
		{"login-limit", "login attempts allowed per client address per minute", func(fs *flag.FlagSet, n, h string) {
			fs.IntVar(&c.LoginLimit, n, 30, h)
		}},
		{"encoder", "serial port of the desk card encoder (PN532), e.g. /dev/ttyUSB0; empty for none", str(&c.Encoder, "")},
		{"encoder-baud", "the card encoder's baud rate", func(fs *flag.FlagSet, n, h string) {
			fs.IntVar(&c.EncoderBaud, n, 115200, h)
		}},
		{"card-sector", "MIFARE sector holding the one-card credential (1–15)", func(fs *flag.FlagSet, n, h string) {
			fs.IntVar(&c.CardSector, n, 1, h)
		}},
		{"card-master-key-file", "file with the site's card master key (hex); default DATA_DIR/keys/card-master.key, generated", str(&c.CardMasterKey, "")},
		{"mqtt", "external MQTT broker URL (tcp://host:1883, tls://…); empty runs the embedded broker", str(&c.MQTT, "")},
		{"mqtt-listen", "address of the embedded MQTT broker", str(&c.MQTTListen, "127.0.0.1:1883")},
		{"mqtt-user", "onecard's username on an external broker", str(&c.MQTTUser, "onecard-server")},
		{"mqtt-password", "onecard's password on an external broker (use ONECARD_MQTT_PASSWORD_FILE)", str(&c.MQTTPassword, "")},
		{"mqtt-tls-cert", "TLS certificate file for the embedded MQTT broker (devices then use tls://)", str(&c.MQTTTLSCert, "")},
		{"mqtt-tls-key", "TLS private key file for the embedded MQTT broker", str(&c.MQTTTLSKey, "")},
		{"monitor-password", "password of the read-only 'monitor' user of the embedded broker (default: random, logged)", str(&c.MonitorPassword, "")},
		{"holidays", "public holidays, comma-separated dates (2026-10-01,2026-10-02): schedules use their holiday hours on them", str(&c.Holidays, "")},
		{"printer", "serial port of the desk's receipt printer (ESC/POS), e.g. /dev/ttyUSB1; empty for none", str(&c.Printer, "")},
		{"printer-baud", "the receipt printer's baud rate", func(fs *flag.FlagSet, n, h string) {
			fs.IntVar(&c.PrinterBaud, n, 9600, h)
		}},
		{"payterm", "serial port of the desk's bank-card payment terminal (docs/payterm.md); empty for none", str(&c.Payterm, "")},
		{"payterm-baud", "the payment terminal's baud rate", func(fs *flag.FlagSet, n, h string) {
			fs.IntVar(&c.PaytermBaud, n, 115200, h)
		}},
		{"pass-key-file", "the site's gate-pass signing key (Ed25519 PEM); default DATA_DIR/keys/pass.pem, generated", str(&c.PassKey, "")},
		{"gates", "the gates goods may leave by, comma-separated zone codes (their gate terminals' zone)", str(&c.Gates, "gate")},
		{"pass-retention", "how long gate-pass records are kept (the audit log keeps its rows)", func(fs *flag.FlagSet, n, h string) {
			fs.DurationVar(&c.PassRetention, n, 365*24*time.Hour, h)
		}},
		{"locker", "serial port of the parcel-locker bank's RS-485 line (docs/locker.md); empty for none", str(&c.Locker, "")},
		{"locker-baud", "the locker boards' baud rate", func(fs *flag.FlagSet, n, h string) {
			fs.IntVar(&c.LockerBaud, n, 19200, h)
		}},
		{"locker-doors", "how many doors the locker bank has (16 a board)", func(fs *flag.FlagSet, n, h string) {
			fs.IntVar(&c.LockerDoors, n, 48, h)
		}},
		{"scanner", "serial port of the desk's barcode scanner (docs/scanner.md); empty for none (a keyboard-wedge scanner needs nothing)", str(&c.Scanner, "")},
		{"scanner-baud", "the barcode scanner's baud rate", func(fs *flag.FlagSet, n, h string) {
			fs.IntVar(&c.ScannerBaud, n, 9600, h)
		}},
		{"mail-webhook", "URL of an SMS gateway's webhook for mail notices (signed JSON POSTs); empty: notices go to the log", str(&c.MailWebhook, "")},
		{"mail-webhook-secret-file", "file with the key the webhook's requests are signed with (HMAC-SHA256)", str(&c.MailWebhookSecret, "")},
		{"kiosk-printers", "the kiosks' receipt printers, NAME=PORT comma-separated (lobby-1=/dev/ttyUSB3); a kiosk's registration names its printer", str(&c.KioskPrinters, "")},
		{"kiosk-payterms", "the kiosks' payment terminals, NAME=PORT comma-separated (lobby-1=/dev/ttyUSB4)", str(&c.KioskPayterms, "")},
		{"gateway", "QR payment gateway API URL (docs/gateway.md); empty for none", str(&c.Gateway, "")},
		{"gateway-merchant", "our merchant id at the gateway", str(&c.GatewayMerchant, "")},
		{"gateway-key-file", "our merchant signing key (Ed25519 PEM)", str(&c.GatewayKey, "")},
		{"gateway-public-key-file", "the gateway's public key (Ed25519 PEM)", str(&c.GatewayPub, "")},
		{"public-url", "onecard's URL as the gateway reaches it, for payment notifications (https://desk.example.com)", str(&c.PublicURL, "")},
		{"memory-limit", "soft memory limit of the server (e.g. 180MiB, 1GiB; 0 for none); GOMEMLIMIT, if set, wins", str(&c.MemoryLimit, "180MiB")},
		{"card-mac-key-file", "file with the site's card MAC key (hex); default DATA_DIR/keys/card-mac.key, generated", str(&c.CardMACKey, "")},
	}
}

func envName(flagName string) string {
	return "ONECARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse reads flags, then fills the options not given as flags from the
// environment.
func parse(fs *flag.FlagSet, c *config, names []string, args []string, out io.Writer) error {
	byName := map[string]option{}
	for _, o := range options(c) {
		byName[o.name] = o
	}
	for _, n := range names {
		o, ok := byName[n]
		if !ok {
			panic("unknown option " + n)
		}
		o.bind(fs, n, fmt.Sprintf("%s (env %s, or %s_FILE)", o.help, envName(n), envName(n)))
	}
	fs.SetOutput(out)
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, n := range names {
		if set[n] {
			continue
		}
		v, ok, err := lookupEnv(envName(n))
		if err != nil {
			return err
		}
		if ok {
			if err := fs.Set(n, v); err != nil {
				return fmt.Errorf("%s: %w", envName(n), err)
			}
		}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func lookupEnv(name string) (string, bool, error) {
	if f, ok := os.LookupEnv(name + "_FILE"); ok && f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", false, fmt.Errorf("%s_FILE: %w", name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), true, nil
	}
	v, ok := os.LookupEnv(name)
	return v, ok, nil
}

var errHelp = flag.ErrHelp

func isHelp(err error) bool { return errors.Is(err, errHelp) }

// splitAction takes the action word of a command with actions ("user add
// …"). With none, or with --help, it prints usage and returns "" (and an
// error when nothing was asked).
func splitAction(args []string, command, usage string) (string, []string, error) {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Print(usage)
		if len(args) == 0 {
			return "", nil, errors.New(command + ": no action given")
		}
		return "", nil, nil
	}
	return args[0], args[1:], nil
}

// parseSize reads a size in bytes: a whole number, optionally followed by
// KiB, MiB or GiB.
func parseSize(s string) (int64, error) {
	n, unit := strings.TrimSpace(s), int64(1)
	for suffix, u := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(n, suffix) {
			n, unit = strings.TrimSpace(strings.TrimSuffix(n, suffix)), u
			break
		}
	}
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil || v < 0 || v > (1<<50)/unit {
		return 0, fmt.Errorf("size %q: want a whole number of bytes, KiB, MiB or GiB", s)
	}
	return v * unit, nil
}
