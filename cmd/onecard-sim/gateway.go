package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	gatewaysim "onecard/firmware-sim/gateway"
	"onecard/gateway"
)

const gatewayHelp = `Usage: onecard-sim gateway --key-file FILE [flags]

Simulates an online payment gateway for QR-code payments (docs/gateway.md):
the order API onecard's gateway client calls, the page a phone opens when
it scans an order's QR code (支付 / 取消), and signed notifications POSTed to
the order's notify URL, retried with backoff until a 2xx.

Keys are Ed25519 PEM files. --key-file is the gateway's private key (made,
mode 0600, if missing); its public half is written to FILE.pub for onecard
to verify with. --merchant-key-file is the merchant's key: a public key, or
a private key (made, mode 0600, if missing: give that file to onecard).

The gateway's URL is printed first; then commands are read on standard
input, one a line. TXN is an order's transaction id or our reference.

  list                 list the orders, oldest first
  pay TXN              pay a pending order, as the payer pressing 支付
  close TXN            close a pending order (the merchant is notified)
  twice on|off         deliver every new notification twice (a duplicate,
                       byte for byte, after its 2xx)
  late DURATION        hold back the first delivery of every new
                       notification by DURATION, signed at payment time
                       (a replay: refused once outside the window); 0: off
  badsig on|off        damage the signature of every delivery
  deliveries           list the delivery attempts
  status               show the counts and the faults
  help                 list the commands
  quit                 stop

Flags:
`

// runGateway is the gateway subcommand.
func runGateway(ctx context.Context, args []string, std stdio) error {
	fs := flag.NewFlagSet("onecard-sim gateway", flag.ContinueOnError)
	listen := fs.String("listen", gatewaysim.DefaultListen, "`address` to listen on; port 0 picks a free one")
	keyFile := fs.String("key-file", "", "the gateway's private key, PEM (`file`, required; made if missing)")
	merchant := fs.String("merchant", "onecard", "the merchant's `id`")
	merchantKey := fs.String("merchant-key-file", "", "the merchant's key, PEM (`file`); default merchant.pem beside --key-file, made if missing")
	baseURL := fs.String("base-url", "", "`URL` the QR codes point at, as a phone reaches the gateway; default the listener's")
	window := fs.Duration("window", gateway.DefaultWindow, "how far a request's timestamp may be from the clock (`time`)")
	retry := fs.Duration("retry", gatewaysim.DefaultRetryBase, "wait before the first retry of a notification (`time`), doubling")
	retryMax := fs.Duration("retry-max", gatewaysim.DefaultRetryMax, "longest wait between retries (`time`)")
	attempts := fs.Int("attempts", gatewaysim.DefaultAttempts, "deliveries of a notification before giving up (`n`)")
	exitOnEOF := fs.Bool("exit-on-eof", false, "stop when standard input ends")
	verbose := fs.Bool("v", false, "log every request")
	if err := parseFlags(fs, args, gatewayHelp, std.out); err != nil {
		return err
	}
	switch {
	case *keyFile == "":
		return usageError{"--key-file is required"}
	case !gateway.ValidTxn(*merchant):
		return usageError{"--merchant: letters, digits, '-' and '_'"}
	case *baseURL != "" && !gateway.ValidNotifyURL(*baseURL):
		return usageError{"--base-url: want http(s)://host[:port]"}
	case *window <= 0:
		return usageError{"--window must be positive"}
	case *retry <= 0 || *retryMax < *retry:
		return usageError{"--retry must be positive, and --retry-max at least --retry"}
	case *attempts < 1:
		return usageError{"--attempts must be at least 1"}
	}
	if *merchantKey == "" {
		*merchantKey = filepath.Join(filepath.Dir(*keyFile), "merchant.pem")
	}

	log := simLog(std.err, *verbose)
	key, made, err := gateway.LoadOrCreatePrivateKey(*keyFile)
	if err != nil {
		return err
	}
	if made {
		log.Info("gateway key made", "file", *keyFile)
	}
	pubFile := *keyFile + ".pub"
	if err := os.WriteFile(pubFile, gateway.EncodePublicKey(key.Public().(ed25519.PublicKey)), 0o644); err != nil {
		return fmt.Errorf("gateway public key: %w", err)
	}
	mpub, err := merchantPublicKey(*merchantKey, log)
	if err != nil {
		return err
	}
	sim, err := gatewaysim.Start(gatewaysim.Options{
		Key: key, Merchants: map[string]ed25519.PublicKey{*merchant: mpub},
		Listen: *listen, BaseURL: *baseURL, Window: *window,
		RetryBase: *retry, RetryMax: *retryMax, Attempts: *attempts, Log: log,
	})
	if err != nil {
		return err
	}
	defer sim.Stop()
	fmt.Fprintln(std.out, sim.URL())
	log.Info("payment gateway simulator ready", "url", sim.URL(), "merchant", *merchant, "key_id", sim.KeyID(),
		"public_key_file", pubFile, "merchant_key_file", *merchantKey)
	c := &gatewayConsole{sim: sim, out: std.out}
	err = console(ctx, std.in, *exitOnEOF, sim.Served(), c.do)
	sim.Stop()
	log.Info("payment gateway simulator stopped")
	return err
}

// merchantPublicKey reads the merchant's key file, a public or a private
// key, and makes a private key there if there is none.
func merchantPublicKey(path string, log *slog.Logger) (ed25519.PublicKey, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		k, made, err := gateway.LoadOrCreatePrivateKey(path)
		if err != nil {
			return nil, err
		}
		if made {
			log.Info("merchant key made: give it to onecard", "file", path)
		}
		return k.Public().(ed25519.PublicKey), nil
	}
	return gateway.LoadPublicKey(path)
}

// gatewayConsole runs the stdin commands.
type gatewayConsole struct {
	sim *gatewaysim.Sim
	out io.Writer
}

func (c *gatewayConsole) do(line string) (quit bool) {
	f := strings.Fields(line)
	say := func(format string, a ...any) { fmt.Fprintf(c.out, format+"\n", a...) }
	onOff := func(name string, set func(bool)) {
		if len(f) != 2 || (f[1] != "on" && f[1] != "off") {
			say("error: %s: want on or off", name)
			return
		}
		set(f[1] == "on")
		say("%s %s", name, f[1])
	}
	order := func(verb string, act func(string) (gatewaysim.Order, error)) {
		if len(f) != 2 {
			say("error: %s: want a transaction id or a reference", verb)
			return
		}
		o, ok := c.sim.Find(f[1])
		if !ok {
			say("error: %s: no order %q", verb, f[1])
			return
		}
		o, err := act(o.Txn)
		if err != nil {
			say("error: %s: %v", verb, err)
			return
		}
		say("%s %s", o.State, orderLine(o))
	}
	switch f[0] {
	case "quit", "exit":
		return true
	case "help":
		say("commands: list · pay TXN · close TXN · twice on|off · late DURATION · badsig on|off · deliveries · status · quit")
	case "list":
		orders := c.sim.Orders()
		say("orders: %d", len(orders))
		for _, o := range orders {
			say("  %s", orderLine(o))
		}
	case "pay":
		order("pay", c.sim.Pay)
	case "close":
		order("close", c.sim.Close)
	case "twice":
		onOff("twice", c.sim.SetTwice)
	case "badsig":
		onOff("badsig", c.sim.SetBadSig)
	case "late":
		var d time.Duration
		var err error
		if len(f) == 2 && f[1] != "0" && f[1] != "off" {
			d, err = time.ParseDuration(f[1])
		}
		if len(f) != 2 || err != nil || d < 0 {
			say("error: late: want a duration, e.g. 10m, or 0")
			return false
		}
		c.sim.SetLate(d)
		if d == 0 {
			say("late off")
		} else {
			say("late %v", d)
		}
	case "deliveries":
		ds := c.sim.Deliveries()
		say("deliveries: %d", len(ds))
		for _, d := range ds {
			res := fmt.Sprint(d.Status)
			if d.Status == 0 {
				res = "error " + d.Err
			}
			bad := ""
			if d.BadSig {
				bad = " badsig"
			}
			say("  %s %s %s #%d %s%s → %s", d.At.Format(time.RFC3339), d.Txn, d.State, d.Attempt, d.Kind, bad, res)
		}
	case "status":
		st := c.sim.Status()
		say("orders=%d pending=%d paid=%d closed=%d deliveries=%d delivering=%d twice=%s late=%v badsig=%s url=%s",
			st.Orders, st.Pending, st.Paid, st.Closed, st.Deliveries, st.Delivering, onoff(st.Twice), st.Late, onoff(st.BadSig), c.sim.URL())
	default:
		say("error: unknown command %q (try help)", f[0])
	}
	return false
}

func onoff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// orderLine shows an order on one line.
func orderLine(o gatewaysim.Order) string {
	s := fmt.Sprintf("%s %s %s ¥%s %s", o.Txn, o.Ref, o.Merchant, gateway.Yuan(o.AmountFen), o.State)
	switch {
	case o.State == gateway.StatePaid:
		s += " " + o.PaidAt.Format(time.RFC3339)
	case o.State == gateway.StateClosed:
		s += " by " + o.ClosedBy
	default:
		s += " " + o.QRContent
	}
	return s
}
