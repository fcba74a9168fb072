package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"onecard/devices/broker"
	"onecard/estate"
	"onecard/fleet"
	"onecard/fleet/proto"
)

// passwordFrom reads a password from file, or, with no file, reuses or
// makes one at keep (mode 0600) and says so.
func passwordFrom(file, keep string) (pw, made string, err error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", "", err
		}
		return strings.TrimRight(string(b), "\r\n"), "", nil
	}
	if b, err := os.ReadFile(keep); err == nil {
		return strings.TrimRight(string(b), "\r\n"), "", nil
	}
	pw = randomSecret()
	if err := os.WriteFile(keep, []byte(pw+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return pw, keep, nil
}

const devicesUsage = `Usage:
  onecard devices add --id ID --kind KIND --zone ZONE[,ZONE…] [--name TEXT]
  onecard devices list
  onecard devices disable --id ID      (its broker credentials stop working at once)
  onecard devices enable --id ID
  onecard devices mosquitto-config --dir DIR [--listener 127.0.0.1:1883]
                                   [--server-password-file F] [--monitor-password-file F]

Kinds: reader, turnstile, lift, kiosk-reader, gate-terminal. "add" prints the
device's secret once; only its hash is kept. "mosquitto-config" writes
passwd, acl and mosquitto.conf for an external Mosquitto into DIR, with
onecard's own user and the read-only monitor. Database
and site options (--db, --data-dir, --site) as for serve.
`

func devicesCmd(args []string) error {
	action, rest, err := splitAction(args, "devices", devicesUsage)
	if action == "" {
		return err
	}
	c := &config{}
	fs := flag.NewFlagSet("onecard devices "+action, flag.ContinueOnError)
	id := fs.String("id", "", "device id ([a-z0-9-], e.g. gate-1)")
	kind := fs.String("kind", "reader", "device kind")
	zones := fs.String("zone", "", "zones, comma-separated (e.g. gate,b3-door)")
	name := fs.String("name", "", "name shown on screens")
	dir := fs.String("dir", "", "directory for the Mosquitto files")
	listener := fs.String("listener", "127.0.0.1:1883", "Mosquitto listener address")
	serverPw := fs.String("server-password-file", "", "mosquitto-config: onecard's own broker password (default: made and kept in DIR)")
	monitorPw := fs.String("monitor-password-file", "", "mosquitto-config: the monitor's password (default: made and kept in DIR)")
	if err := parse(fs, c, []string{"data-dir", "db", "site", "site-name", "time-zone"}, rest, os.Stderr); err != nil {
		return err
	}
	ctx := context.Background()
	db, err := openDB(ctx, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer db.Close()
	es, err := estate.Open(ctx, db, c.Site, c.SiteName, c.TimeZone)
	if err != nil {
		return err
	}
	fl, err := fleet.New(db, es.Site().ID, es.Site().Code, fleet.Options{})
	if err != nil {
		return err
	}
	switch action {
	case "add":
		var zs []string
		for _, z := range strings.Split(*zones, ",") {
			if z = strings.TrimSpace(z); z != "" {
				zs = append(zs, z)
			}
		}
		d, secret, err := fl.AddDevice(ctx, fleet.NewDevice{Code: *id, Kind: *kind, Name: *name, Zones: zs})
		if err != nil {
			return fmt.Errorf("devices add: %w", err)
		}
		fmt.Printf("added %s (%s) in zones %s\nusername: %s\nsecret:   %s\n(shown once; only its hash is kept)\n",
			d.Code, d.Kind, strings.Join(zs, ", "), d.Code, secret)
	case "list":
		list, err := fl.Devices(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tSTATE\tFIRMWARE\tLAST SEEN\tLAG\tZONES")
		for _, d := range list {
			state := "offline"
			switch {
			case d.Disabled:
				state = "disabled"
			case d.Online:
				state = "online"
			}
			seen := "never"
			if d.LastSeenAt != nil {
				seen = d.LastSeenAt.Format("2006-01-02 15:04:05Z")
			}
			var zs []string
			for _, z := range d.Zones {
				zs = append(zs, fmt.Sprintf("%s@%d/%d", z.Zone, z.Acked, z.Current))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Code, d.Kind, state, d.Firmware, seen, d.Lag(), strings.Join(zs, " "))
		}
		tw.Flush()
	case "disable", "enable":
		if err := fl.SetDisabled(ctx, *id, action == "disable"); err != nil {
			return fmt.Errorf("devices %s: %w", action, err)
		}
		fmt.Printf("%s %sd\n", *id, action)
	case "mosquitto-config":
		if *dir == "" {
			return errors.New("devices mosquitto-config: --dir is required")
		}
		users, err := fl.MosquittoUsers(ctx)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(*dir, 0o700); err != nil {
			return err
		}
		// onecard's own user and the read-only monitor: passwords made here
		// (kept in DIR, mode 0600) unless files name them.
		for _, u := range []struct {
			name, role, file string
		}{{fleet.ServerUser, proto.RoleServer, *serverPw}, {fleet.MonitorUser, proto.RoleMonitor, *monitorPw}} {
			pw, made, err := passwordFrom(u.file, filepath.Join(*dir, u.name+".password"))
			if err != nil {
				return err
			}
			hash, err := broker.HashSecret(pw)
			if err != nil {
				return err
			}
			users = append(users, broker.MosquittoUser{Username: u.name, Hash: hash, Principal: proto.Principal{Role: u.role, ID: u.name}})
			if made != "" {
				fmt.Printf("password of %s written to %s\n", u.name, made)
			}
		}
		passwd, acl := broker.MosquittoFiles(es.Site().Code, users)
		pp, ap := filepath.Join(*dir, "passwd"), filepath.Join(*dir, "acl")
		for p, b := range map[string][]byte{pp: passwd, ap: acl, filepath.Join(*dir, "mosquitto.conf"): broker.MosquittoConf(*listener, pp, ap)} {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				return err
			}
		}
		fmt.Printf("wrote %s: passwd, acl, mosquitto.conf for %d devices, onecard and the monitor\n", *dir, len(users)-2)
		fmt.Printf("start onecard with --mqtt tcp://HOST:1883 --mqtt-user %s and ONECARD_MQTT_PASSWORD_FILE=%s\n",
			fleet.ServerUser, filepath.Join(*dir, fleet.ServerUser+".password"))
	default:
		fmt.Print(devicesUsage)
		return fmt.Errorf("devices: unknown action %q", action)
	}
	return nil
}
