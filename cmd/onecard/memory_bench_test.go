package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"onecard/estate"
	"onecard/firmware-sim/reader"
	"onecard/fleet"
	"onecard/store"
)

// BenchmarkServerMemory starts "onecard serve" as its own process with
// 100,000 cards on the whitelists (100 zones of 1,000) and connects 1,000
// simulated readers (10 per zone) to its embedded broker; once every
// reader holds its zone, it reports the server's resident memory (VmRSS).
// ONECARD_BENCH_READERS and ONECARD_BENCH_CARDS change the sizes.
func BenchmarkServerMemory(b *testing.B) {
	readers := envInt("ONECARD_BENCH_READERS", 1000)
	cards := envInt("ONECARD_BENCH_CARDS", 100000)
	const zones = 100
	for b.Loop() {
		dir := b.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		db, err := store.Open(ctx, store.Options{DataDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		es, err := estate.Open(ctx, db, "main", "bench", "Asia/Shanghai")
		if err != nil {
			b.Fatal(err)
		}
		fl, err := fleet.New(db, es.Site().ID, "main", fleet.Options{})
		if err != nil {
			b.Fatal(err)
		}
		secrets := map[string]string{}
		var opts []reader.Options
		for i := 0; i < readers; i++ {
			id := fmt.Sprintf("r%04d", i)
			zone := fmt.Sprintf("z%03d", i%zones)
			_, secret, err := fl.AddDevice(ctx, fleet.NewDevice{Code: id, Kind: "reader", Zones: []string{zone}})
			if err != nil {
				b.Fatal(err)
			}
			secrets[id] = secret
			opts = append(opts, reader.Options{Site: "main", ID: id, Secret: secret, Zone: zone})
		}
		now := time.Now().Unix()
		err = db.Tx(ctx, func(tx *store.Tx) error {
			for z := 0; z < zones; z++ {
				zid, err := fl.EnsureZone(ctx, tx, fmt.Sprintf("z%03d", z), "")
				if err != nil {
					return err
				}
				for i := 0; i < cards/zones; i++ {
					card := fmt.Sprintf("%02X%06X", z, i)
					e := fmt.Sprintf("%s,%d,%d,%d,always,0", card, z*1000000+i+1, now-3600, now+86400*365)
					if _, err := tx.Exec(ctx, "INSERT INTO wl_entries (zone_id, card, entry, seq) VALUES (?, ?, ?, 1)", zid, card, e); err != nil {
						return err
					}
				}
				if _, err := tx.Exec(ctx, "UPDATE zones SET seq = 1 WHERE id = ?", zid); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		db.Close()

		addr, mq := freeAddr(b), freeAddr(b)
		cmd := command(b, nil, "serve", "--addr", addr, "--data-dir", dir, "--site", "main", "--mqtt-listen", mq, "--log-level", "warn")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if res, err := http.Get("http://" + addr + "/readyz"); err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				b.Fatal("onecard serve never became ready")
			}
		}
		for i := range opts {
			opts[i].Broker = "tcp://" + mq
		}
		rf, err := reader.StartReaders(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		per := cards / zones
		for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			ready := 0
			for _, r := range rf.Readers() {
				if r.Online() && r.Whitelist(zoneOf(r)) == per {
					ready++
				}
			}
			if ready == readers {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d readers caught up", ready, readers)
			}
		}
		time.Sleep(2 * time.Second) // let the server settle (acknowledgements, GC)
		rss := vmRSS(b, cmd.Process.Pid)
		b.ReportMetric(float64(rss)/1024, "server-rss-MiB")
		b.ReportMetric(float64(readers), "readers")
		b.ReportMetric(float64(cards), "cards")
		rf.Stop()
		cancel()
	}
}

func zoneOf(r *reader.Reader) string {
	for z := range r.Applied() {
		return z
	}
	return ""
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// vmRSS reads a process's resident set size in KiB.
func vmRSS(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
