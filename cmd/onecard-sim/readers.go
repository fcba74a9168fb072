package main

import (
	"bufio"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"onecard/firmware-sim/reader"
	"onecard/fleet/proto"
)

const readersHelp = `Usage: onecard-sim readers --broker URL --site S --zone Z [--count N] [flags]

Simulates gate readers speaking onecard's reader fleet protocol over MQTT
(docs/mqtt.md): each one connects as its own device (client id = username =
its id), births, holds the whitelists of its zones, applies and acknowledges
changes and snapshots, decides alone when a card is presented, and queues
its events until the server acknowledges them. Readers are named
PREFIX1 … PREFIXN. The first line of standard output is
"ready N readers on URL"; then commands are read on standard input, one a
line:

  tap ID CARD          present a card (UID in hex) to reader ID: prints
                       "ID CARD granted" or "ID CARD denied REASON"
  offline ID           take reader ID's network down (events queue)
  online ID            bring it back
  power-loss ID        cut its power for an instant: the broker publishes
                       its will, it reconnects with its clock unset
  clock ID ok|unset    set or lose its clock
  scan ID TEXT         a gate-pass code (or pass number) read at reader ID as
                       a gate terminal: waits for the server's verdict, or
                       decides offline; prints "ID scan SEQ ok|REASON
                       pass=P offline=true|false"
  release ID TEXT MOVER [PLATE]
                       the guard releases the pass's goods: queues
                       pass_release; prints "ID release queued"
  mismatch ID TEXT     the goods do not match: queues pass_mismatch
  status [ID]          one line per reader, then a "total" line
  help                 list the commands
  quit                 stop: each reader publishes its offline state and
                       disconnects

Flags:
`

// runReaders is the readers subcommand.
func runReaders(ctx context.Context, args []string, std stdio) error {
	fs := flag.NewFlagSet("onecard-sim readers", flag.ContinueOnError)
	broker := fs.String("broker", "", "broker `URL`, tcp://host:port or tls://host:port (required)")
	site := fs.String("site", "", "site `code` of the topics (required)")
	zone := fs.String("zone", "", "the `zone` the readers guard (required)")
	zones := fs.String("zones", "", "more zones whose whitelists they hold, `z1,z2`")
	count := fs.Int("count", 1, "`number` of readers")
	prefix := fs.String("id-prefix", "reader-", "device ids are `PREFIX`1 … PREFIXN")
	secretFile := fs.String("secret-file", "", "`file` of device secrets, one \"id secret\" a line (# comments)")
	stateDir := fs.String("state-dir", "", "`directory` where each reader keeps ID.json (default: memory only)")
	saveEvery := fs.Duration("save-every", 0, "write each state file at most once per `period` (for large fleets); 0 writes at every change")
	exitOnEOF := fs.Bool("exit-on-eof", false, "stop when standard input ends")
	verbose := fs.Bool("v", false, "log every message")
	if err := parseFlags(fs, args, readersHelp, std.out); err != nil {
		return err
	}
	var extra []string
	if *zones != "" {
		extra = strings.Split(*zones, ",")
	}
	switch {
	case *broker == "":
		return usageError{"--broker is required"}
	case !proto.ValidID(*site):
		return usageError{fmt.Sprintf("--site %q: want [a-z0-9-], at most 40", *site)}
	case !proto.ValidID(*zone):
		return usageError{fmt.Sprintf("--zone %q: want [a-z0-9-], at most 40", *zone)}
	case *count < 1:
		return usageError{"--count must be at least 1"}
	case *saveEvery < 0:
		return usageError{"--save-every cannot be negative"}
	}
	for _, z := range extra {
		if !proto.ValidID(z) {
			return usageError{fmt.Sprintf("--zones: %q is not a zone", z)}
		}
	}
	secrets := map[string]string{}
	if *secretFile != "" {
		var err error
		if secrets, err = readSecrets(*secretFile); err != nil {
			return usageError{"--secret-file: " + err.Error()}
		}
	}

	log := simLog(std.err, *verbose)
	if *stateDir != "" {
		if err := os.MkdirAll(*stateDir, 0o700); err != nil {
			return err
		}
	}
	opts := make([]reader.Options, *count)
	for i := range opts {
		id := fmt.Sprintf("%s%d", *prefix, i+1)
		if !proto.ValidID(id) {
			return usageError{fmt.Sprintf("--id-prefix: %q is not a device id", id)}
		}
		secret, ok := secrets[id]
		if *secretFile != "" && !ok {
			return usageError{fmt.Sprintf("--secret-file: no secret for %s", id)}
		}
		o := reader.Options{Broker: *broker, Site: *site, ID: id, Secret: secret, Zone: *zone, Zones: extra,
			SaveEvery: *saveEvery, Log: log}
		if *stateDir != "" {
			o.StateFile = filepath.Join(*stateDir, id+".json")
		}
		opts[i] = o
	}

	f, err := reader.StartReaders(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(std.out, "ready %d readers on %s\n", *count, *broker)
	log.Info("readers started", "count", *count, "broker", *broker, "site", *site, "zone", *zone)
	c := &readersConsole{fleet: f, out: std.out}
	err = console(ctx, std.in, *exitOnEOF, nil, c.do)
	if serr := f.Stop(); err == nil {
		err = serr
	}
	log.Info("readers stopped")
	return err
}

// readSecrets reads "id secret" lines.
func readSecrets(path string) (map[string]string, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(file)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"id secret\"", n)
		}
		out[f[0]] = f[1]
	}
	return out, sc.Err()
}

// readersConsole runs the stdin commands.
type readersConsole struct {
	fleet *reader.Fleet
	out   io.Writer
}

func (c *readersConsole) do(line string) (quit bool) {
	f := strings.Fields(line)
	say := func(format string, a ...any) { fmt.Fprintf(c.out, format+"\n", a...) }
	one := func(usage string, n int) *reader.Reader {
		if len(f) != n+1 {
			say("error: usage: %s", usage)
			return nil
		}
		r := c.fleet.Reader(f[1])
		if r == nil {
			say("error: no reader %q", f[1])
		}
		return r
	}
	switch f[0] {
	case "quit", "exit":
		return true
	case "help":
		say("commands: tap ID CARD · offline ID · online ID · power-loss ID · clock ID ok|unset · " +
			"scan ID TEXT · release ID TEXT MOVER [PLATE] · mismatch ID TEXT · status [ID] · quit")
	case "tap":
		if r := one("tap ID CARD", 2); r != nil {
			d := r.Tap(f[2])
			if d.Granted {
				say("%s %s granted", r.ID(), f[2])
			} else {
				say("%s %s denied %s", r.ID(), f[2], d.Reason)
			}
		}
	case "offline", "online":
		if r := one(f[0]+" ID", 1); r != nil {
			r.Offline(f[0] == "offline")
			say("%s %s", r.ID(), f[0])
		}
	case "power-loss":
		if r := one("power-loss ID", 1); r != nil {
			r.PowerLoss()
			say("%s power-loss", r.ID())
		}
	case "clock":
		if r := one("clock ID ok|unset", 2); r != nil {
			if f[2] != "ok" && f[2] != "unset" {
				say("error: usage: clock ID ok|unset")
				return false
			}
			r.SetClock(f[2] == "ok")
			say("%s clock %s", r.ID(), f[2])
		}
	case "scan":
		if r := one("scan ID TEXT", 2); r != nil {
			v, err := r.ScanPass(context.Background(), f[2])
			if err != nil {
				say("error: %v", err)
				return false
			}
			word := v.Reason
			if v.OK {
				word = "ok"
			}
			say("%s scan %d %s pass=%s offline=%t", r.ID(), v.Scan, word, cmp.Or(v.Pass, "-"), v.Offline)
		}
	case "release":
		if len(f) == 4 {
			f = append(f, "")
		}
		if r := one("release ID TEXT MOVER [PLATE]", 4); r != nil {
			if err := r.ReleasePass(f[2], f[3], f[4]); err != nil {
				say("error: %v", err)
				return false
			}
			say("%s release queued", r.ID())
		}
	case "mismatch":
		if r := one("mismatch ID TEXT", 2); r != nil {
			if err := r.MismatchPass(f[2]); err != nil {
				say("error: %v", err)
				return false
			}
			say("%s mismatch queued", r.ID())
		}
	case "status":
		c.status(f[1:], say)
	default:
		say("error: unknown command %q (try help)", f[0])
	}
	return false
}

func (c *readersConsole) status(args []string, say func(string, ...any)) {
	rs := c.fleet.Readers()
	if len(args) > 0 {
		r := c.fleet.Reader(args[0])
		if r == nil {
			say("error: no reader %q", args[0])
			return
		}
		rs = []*reader.Reader{r}
	}
	online, pending := 0, 0
	for _, r := range rs {
		st := r.Status()
		var applied []string
		for _, z := range slices.Sorted(maps.Keys(st.Applied)) {
			applied = append(applied, fmt.Sprintf("%s:%d", z, st.Applied[z]))
		}
		clock := "ok"
		if !st.ClockOK {
			clock = "unset"
		}
		say("%s online=%t session=%d clock=%s applied=%s pending=%d events=%d relay=%d malformed=%d",
			st.ID, st.Online, st.Session, clock, strings.Join(applied, ","), st.Pending, st.EventSeq, st.RelayOpens, st.Malformed)
		if st.Online {
			online++
		}
		pending += st.Pending
	}
	say("total readers=%d online=%d pending=%d at=%s", len(rs), online, pending, time.Now().UTC().Format(time.RFC3339))
}
