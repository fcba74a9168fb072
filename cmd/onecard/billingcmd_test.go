package main

import (
	"context"
	"strings"
	"testing"

	"onecard/auth"
	"onecard/billing"
	"onecard/estate"
	"onecard/store"
)

func TestBillingGenerateCommand(t *testing.T) {
	dir := t.TempDir()
	ctx := auth.WithActor(context.Background(), auth.System)
	db, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	es, err := estate.Open(ctx, db, "cuihu", "翠湖", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := es.CreateUnit(ctx, estate.UnitInput{Code: "1-1-101", Area: 10000, HandoverDate: "2020-01-01"}); err != nil {
		t.Fatal(err)
	}
	bk, err := billing.Open(ctx, db, es.Site(), billing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bk.SaveFeeItem(ctx, billing.FeeItem{Code: "service", Name: "物业服务费", Kind: "per_area", PriceFen: 250}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	env := []string{"ONECARD_DATA_DIR=" + dir, "ONECARD_SITE=cuihu"}
	out, err := run1(t, env, "", "billing", "generate", "--period", "2026-11")
	if err != nil || !strings.Contains(out, "2026-11: 1 bills made, ¥250.00") {
		t.Fatalf("generate: %v\n%s", err, out)
	}
	if out, err = run1(t, env, "", "billing", "generate", "--period", "2026-11"); err != nil || !strings.Contains(out, "0 bills made") {
		t.Fatalf("generate again: %v\n%s", err, out)
	}
	if out, err = run1(t, env, "", "billing", "generate", "--period", "2026-13"); err == nil || !strings.Contains(out, "period_invalid") {
		t.Fatalf("bad period: %v\n%s", err, out)
	}
	if out, err = run1(t, env, "", "billing", "arrears"); err != nil || !strings.Contains(out, "1-1-101") || !strings.Contains(out, "¥      250.00") {
		t.Fatalf("arrears: %v\n%s", err, out)
	}
}
