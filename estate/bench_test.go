package estate_test

import (
	"context"
	"testing"

	"onecard/demo"
	"onecard/estate"
	"onecard/store/storetest"
)

// BenchmarkImportDemoRoll imports the demo estate's roll (432 units, about
// a thousand residents) into an empty SQLite database, all in one
// transaction with its audit rows.
func BenchmarkImportDemoRoll(b *testing.B) {
	rows := demo.Roll()
	for b.Loop() {
		b.StopTimer()
		db := storetest.SQLite(b)
		s, err := estate.Open(context.Background(), db, "demo", "Demo", "Asia/Shanghai")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.ImportRoll(context.Background(), rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rows)), "rows/op")
}

// BenchmarkSearch runs the desk's searches against the demo estate on
// SQLite: a unit code, an entrance prefix, a name and a phone fragment.
func BenchmarkSearch(b *testing.B) {
	db := storetest.SQLite(b)
	ctx := context.Background()
	s, err := estate.Open(ctx, db, "demo", "Demo", "Asia/Shanghai")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.ImportRoll(ctx, demo.Roll()); err != nil {
		b.Fatal(err)
	}
	for _, q := range []struct{ name, q string }{{"code", "2-1-1203"}, {"entrance", "2-1"}, {"name", "王"}, {"phone", "8000"}} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := s.Search(ctx, estate.Query{Q: q.q, Limit: 50}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
