package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"onecard/auth"
	"onecard/billing"
	"onecard/estate"
)

const billingUsage = `Usage:
  onecard billing generate [--period YYYY-MM]   make the month's bills (default: this month)
  onecard billing arrears [--building N]        list units with overdue bills

"generate" is what a monthly timer runs (docs/operations.md): it makes a
bill for every per-area and monthly fee item and every unit handed over,
and running it again makes no second bill. Database and site options
(--db, --data-dir, --site) as for serve.
`

func billingCmd(args []string) error {
	action, rest, err := splitAction(args, "billing", billingUsage)
	if action == "" {
		return err
	}
	c := &config{}
	fs := flag.NewFlagSet("onecard billing "+action, flag.ContinueOnError)
	period := fs.String("period", "", "generate: the month, YYYY-MM (default: this month at the site)")
	building := fs.Int("building", 0, "arrears: only this building (0: all)")
	if err := parse(fs, c, []string{"data-dir", "db", "site", "site-name", "time-zone"}, rest, os.Stderr); err != nil {
		return err
	}
	ctx := auth.WithActor(context.Background(), auth.System)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := openDB(ctx, c, quiet)
	if err != nil {
		return err
	}
	defer db.Close()
	es, err := estate.Open(ctx, db, c.Site, c.SiteName, c.TimeZone)
	if err != nil {
		return err
	}
	bk, err := billing.Open(ctx, db, es.Site(), billing.Options{Log: quiet})
	if err != nil {
		return err
	}
	switch action {
	case "generate":
		if *period == "" {
			*period = bk.Today()[:7]
		}
		g, err := bk.Generate(ctx, *period)
		if err != nil {
			return fmt.Errorf("billing generate: %w", err)
		}
		fmt.Printf("%s: %d bills made, ¥%s\n", g.Period, g.Created, billing.Yuan(g.Total))
	case "arrears":
		list, err := bk.Arrears(ctx, *building)
		if err != nil {
			return err
		}
		var total int64
		for _, a := range list {
			fmt.Printf("%-10s %3d bills  ¥%12s  since %s (%d days, %s)\n", a.Unit, a.Bills, billing.Yuan(a.OverdueFen), a.OldestDue, a.Days, a.Stage)
			total += a.OverdueFen
		}
		fmt.Printf("%d units, ¥%s overdue (as of %s)\n", len(list), billing.Yuan(total), time.Now().Format(time.DateOnly))
	default:
		fmt.Print(billingUsage)
		return fmt.Errorf("unknown action %q", action)
	}
	return nil
}
