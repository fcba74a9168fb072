package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"onecard/auth"
	"onecard/billing"
	"onecard/estate"
)

// FeeItems are the demo's fee items: prices typical of a mid-range estate.
var FeeItems = []billing.FeeItem{
	{Code: "service", Name: "物业服务费", Kind: "per_area", PriceFen: 250}, // per m² a month
	{Code: "parking", Name: "车位管理费", Kind: "monthly", PriceFen: 15000},
	{Code: "water", Name: "水费", Kind: "metered"},
	{Code: "electricity", Name: "公共电费", Kind: "metered"},
	{Code: "card_fee", Name: "门禁卡工本费", Kind: "one_off", PriceFen: 2000},
	{Code: "card_deposit", Name: "门禁卡押金", Kind: "one_off", PriceFen: 5000},
	{Code: "other", Name: "其他", Kind: "one_off"},
}

// SeedBilling gives the demo estate a year of books, once: fee items, the
// last twelve months of bills, and the payments most households made
// (twice a year, by bank transfer or at the desk), so that about one unit
// in ten is in arrears, a few for more than six months. The current
// month's bills are open and not yet due.
func SeedBilling(ctx context.Context, b *billing.Service, es *estate.Service, cashierID int64) error {
	items, err := b.FeeItems(ctx)
	if err != nil || len(items) > 0 {
		return err
	}
	ctx = auth.WithActor(ctx, auth.Actor{Kind: "staff", ID: cashierID, Name: "cashier", Role: auth.Cashier})
	for _, it := range FeeItems {
		if _, err := b.SaveFeeItem(ctx, it); err != nil {
			return fmt.Errorf("demo: fee item %s: %w", it.Code, err)
		}
	}
	var units []estate.UnitSummary
	for {
		page, _, err := es.Search(ctx, estate.Query{Limit: 200, Offset: len(units)})
		if err != nil {
			return err
		}
		units = append(units, page...)
		if len(page) < 200 {
			break
		}
	}
	rng := rand.New(rand.NewPCG(7, 11))
	now := time.Now()
	first := time.Date(now.Year(), now.Month()-11, 1, 0, 0, 0, 0, time.UTC)
	for _, u := range units {
		if rng.IntN(5) == 0 {
			if err := b.Subscribe(ctx, "parking", u.Code, first.Format("2006-01")); err != nil {
				return err
			}
		}
	}
	// Six months of bills, then half a year of payments, twice.
	for half := 0; half < 2; half++ {
		for m := half * 6; m < half*6+6; m++ {
			if _, err := b.Generate(ctx, first.AddDate(0, m, 0).Format("2006-01")); err != nil {
				return err
			}
		}
		if half == 1 {
			break // the current half year is paid below, less completely
		}
		if err := payAll(ctx, b, units, rng, first.AddDate(0, 6, 20), 0.92); err != nil {
			return err
		}
	}
	// The last five months paid by most; the current month open by all.
	return payAll(ctx, b, units, rng, now.AddDate(0, 0, -3), 0.85, first.AddDate(0, 11, 0).Format("2006-01"))
}

// payAll pays, on day, every open bill of a share of the units (except
// bills of the periods skipped), as a history import: receipts numbered,
// not printed.
func payAll(ctx context.Context, b *billing.Service, units []estate.UnitSummary, rng *rand.Rand, day time.Time, share float64, skip ...string) error {
	restore := b.Clock()
	b.SetClock(func() time.Time { return time.Date(day.Year(), day.Month(), day.Day(), 2, 30, 0, 0, time.UTC) })
	defer b.SetClock(restore)
	ctx = billing.Importing(ctx)
	for i, u := range units {
		if rng.Float64() > share {
			continue
		}
		a, err := b.Account(ctx, u.Code)
		if err != nil {
			return err
		}
		var ids []int64
		var total int64
		for _, bill := range a.Open {
			if len(skip) > 0 && bill.Period == skip[0] {
				continue
			}
			ids = append(ids, bill.ID)
			total += bill.Outstanding()
		}
		if total == 0 {
			continue
		}
		in := billing.PayInput{IdemKey: fmt.Sprintf("demo-%s-%d", day.Format("20060102"), i), Unit: u.Code, BillIDs: ids,
			AmountFen: total, Method: "transfer", TransferRef: fmt.Sprintf("BANK%s%04d", day.Format("0102"), i)}
		if rng.IntN(3) == 0 {
			in.Method, in.TransferRef, in.TenderedFen = "cash", "", (total+9999)/10000*10000
		}
		if _, err := b.Pay(ctx, in); err != nil {
			return fmt.Errorf("demo: payment of %s: %w", u.Code, err)
		}
	}
	return nil
}
