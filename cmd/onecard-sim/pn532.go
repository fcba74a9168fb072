package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	firmwaresim "onecard/firmware-sim"
	pn532sim "onecard/firmware-sim/pn532"
)

const pn532Help = `Usage: onecard-sim pn532 --pty-link PATH [flags]

Simulates the desk card encoder: a PN532 answering on a new pty, with
virtual MIFARE Classic 1K cards in transport state. PATH becomes a symlink to
the pty's slave; open it as the encoder's serial port (onecard serve
--encoder PATH). The slave's device path is printed first; then commands
are read on standard input, one a line:

  place UID               put a card on the antenna: UID in hex, 4 or 7
                          bytes (04A1B2C3, 04:A1:B2:C3); a UID placed before
                          brings back the same card with its data
  remove                  lift the card off the antenna
  fault garbage [HEX]     write bytes before the next frame
  fault drop-ack          ignore the next command: no ACK, not executed
  fault corrupt           send the next response with a bad checksum (a NACK
                          from the driver gets it again, intact)
  fault remove-on-write   lift the card during the next MIFARE write (not
                          applied; status 01)
  fault power-loss        reset the chip: silent until the wake-up (55 55 …)
                          and SAMConfiguration; target and settings forgotten
  status                  show the antenna and the chip
  dump [SECTOR]           show the card's blocks, raw (keys included)
  help                    list the commands
  quit                    stop

Flags:
`

// runPN532 is the pn532 subcommand.
func runPN532(ctx context.Context, args []string, std stdio) error {
	fs := flag.NewFlagSet("onecard-sim pn532", flag.ContinueOnError)
	link := fs.String("pty-link", "", "`path` of the symlink to the pty's slave (required); a stale symlink there is replaced")
	baud := fs.Int("baud", 115200, "pace output as a UART at this `rate` would (10 bits a byte); 0 sends at once")
	card := fs.String("card", "", "`UID` (hex) of a card on the antenna from the start")
	latency := fs.Duration("rf-latency", 0, "`time` added before each response involving the card, e.g. 5ms")
	exitOnEOF := fs.Bool("exit-on-eof", false, "stop when standard input ends")
	verbose := fs.Bool("v", false, "log every frame")
	if err := parseFlags(fs, args, pn532Help, std.out); err != nil {
		return err
	}
	switch {
	case *link == "":
		return usageError{"--pty-link is required"}
	case *baud < 0:
		return usageError{"--baud cannot be negative"}
	case *latency < 0:
		return usageError{"--rf-latency cannot be negative"}
	}

	log := simLog(std.err, *verbose)
	c := &pn532Console{
		sim:   pn532sim.New(pn532sim.Options{Baud: *baud, RFLatency: *latency, Log: log}),
		cards: map[string]*pn532sim.Card{},
		baud:  *baud,
		out:   std.out,
	}
	if *card != "" {
		cd, err := c.card(*card)
		if err != nil {
			return usageError{"--card: " + err.Error()}
		}
		c.sim.Place(cd)
	}

	pty, err := firmwaresim.OpenPTY(*link)
	if err != nil {
		return err
	}
	defer pty.Close()
	c.pty = pty
	fmt.Fprintln(std.out, pty.Name())
	log.Info("pn532 simulator ready", "pty", pty.Name(), "link", *link, "baud", *baud, "rf_latency", *latency)

	err = serveConsole(ctx, std, *exitOnEOF, func(ctx context.Context) error { return c.sim.Serve(ctx, pty) }, c.do)
	log.Info("pn532 simulator stopped")
	return err
}

// pn532Console runs the stdin commands.
type pn532Console struct {
	sim   *pn532sim.Sim
	cards map[string]*pn532sim.Card // by UID, so a card placed again keeps its data
	baud  int
	pty   *firmwaresim.PTY
	out   io.Writer
}

// card returns the card with the UID in s, made in transport state the
// first time.
func (c *pn532Console) card(s string) (*pn532sim.Card, error) {
	uid, err := parseHex(s)
	if err != nil {
		return nil, err
	}
	if len(uid) != 4 && len(uid) != 7 {
		return nil, fmt.Errorf("a UID has 4 or 7 bytes, not %d", len(uid))
	}
	k := fmt.Sprintf("%X", uid)
	if cd, ok := c.cards[k]; ok {
		return cd, nil
	}
	cd := pn532sim.NewCard(uid)
	c.cards[k] = cd
	return cd, nil
}

func parseHex(s string) ([]byte, error) {
	s = strings.NewReplacer(":", "", "-", "", " ", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hex: %q", s)
	}
	return b, nil
}

func (c *pn532Console) do(line string) (quit bool) {
	f := strings.Fields(line)
	arg := strings.Join(f[1:], "")
	say := func(format string, a ...any) { fmt.Fprintf(c.out, format+"\n", a...) }
	switch f[0] {
	case "quit", "exit":
		return true
	case "help":
		say("commands: place UID · remove · fault garbage [HEX]|drop-ack|corrupt|remove-on-write|power-loss · status · dump [SECTOR] · quit")
	case "place":
		cd, err := c.card(arg)
		if err != nil {
			say("error: place: %v", err)
			return false
		}
		c.sim.Place(cd)
		say("placed %X", cd.UID())
	case "remove":
		c.sim.Remove()
		say("removed")
	case "fault":
		c.fault(f[1:], say)
	case "status":
		st := c.sim.Status()
		card, key := "none", "-"
		if st.Card != nil {
			card = fmt.Sprintf("%X", st.Card)
		}
		if st.AuthSector >= 0 {
			key = "A"
			if st.KeyB {
				key = "B"
			}
		}
		say("card=%s selected=%t auth-sector=%d key=%s asleep=%t retries=%02X baud=%d pty=%s",
			card, st.Selected, st.AuthSector, key, st.Asleep, st.Retries, c.baud, c.pty.Name())
	case "dump":
		c.dump(arg, say)
	default:
		say("error: unknown command %q (try help)", f[0])
	}
	return false
}

func (c *pn532Console) fault(args []string, say func(string, ...any)) {
	if len(args) == 0 {
		say("error: fault garbage [HEX]|drop-ack|corrupt|remove-on-write|power-loss")
		return
	}
	switch args[0] {
	case "garbage":
		junk := []byte{0xA5, 0x5A, 0x13, 0x37, 0xC3}
		if len(args) > 1 {
			b, err := parseHex(strings.Join(args[1:], ""))
			if err != nil || len(b) == 0 {
				say("error: fault garbage: %v", err)
				return
			}
			junk = b
		}
		c.sim.InjectGarbage(junk)
	case "drop-ack":
		c.sim.DropNextACK()
	case "corrupt":
		c.sim.CorruptNextResponse()
	case "remove-on-write":
		c.sim.RemoveCardOnNextWrite()
	case "power-loss":
		c.sim.PowerLoss()
	default:
		say("error: no fault %q", args[0])
		return
	}
	say("fault %s armed", args[0])
}

func (c *pn532Console) dump(arg string, say func(string, ...any)) {
	cd := c.sim.Card()
	if cd == nil {
		say("error: dump: no card on the antenna")
		return
	}
	first, last := 0, pn532sim.Sectors-1
	if arg != "" {
		s, err := strconv.Atoi(arg)
		if err != nil || s < 0 || s >= pn532sim.Sectors {
			say("error: dump: no sector %q", arg)
			return
		}
		first, last = s, s
	}
	for s := first; s <= last; s++ {
		for b := s * 4; b < s*4+4; b++ {
			blk := cd.Block(b)
			note := ""
			if b%4 == 3 && cd.Bricked(s) {
				note = "  (sector bricked)"
			}
			say("%2d/%2d  % X%s", s, b, blk, note)
		}
	}
}
