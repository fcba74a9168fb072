package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"onecard/auth"
	"onecard/passes"
)

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// purgePasses deletes gate-pass records past their retention, at start and
// then daily (the audit log keeps its rows).
func purgePasses(ctx context.Context, p *passes.Service, log *slog.Logger) {
	for {
		n, err := p.Purge(auth.WithActor(ctx, auth.System))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("gate passes: purge", "err", err)
		case n > 0:
			log.Info("gate passes: purged past retention", "passes", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(24 * time.Hour):
		}
	}
}
