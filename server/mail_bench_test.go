package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"onecard/auth"
	"onecard/devices/scanner"
	"onecard/estate"
	"onecard/store/storetest"
)

// BenchmarkMailBatchRegistration is one clerk-equivalent script
// registering couriers' drops at the desk, through real HTTP, with the
// scanner simulator on a pty at 9600 baud read by the real driver. For
// each item: the scanner reads the tracking number and the page's scanner
// stream (server-sent events) brings it; the clerk types the unit and the
// type-ahead answers; every ten items the batch is registered and the
// page showing them is loaded. ONECARD_BENCH_ITEMS items (default 60).
//
// Reported: items a minute sustained; per item, the scanner's own time
// (the code's wire time at 9600 baud), the time from the scan to the code
// on the page, and onecard's time (the rest: stream, type-ahead, the
// batch's share); onecard-share is onecard's part of each item's time.
func BenchmarkMailBatchRegistration(b *testing.B) {
	items := kioskBenchInt(b, "ONECARD_BENCH_ITEMS", 60)
	feed := &scanner.Feed{}
	scanFeed = feed.Watch
	defer func() { scanFeed = nil }()
	sim := deskScanner(b, feed)
	e := benchStart(b, storetest.SQLite(b))
	ctx := auth.WithActor(context.Background(), auth.Actor{Kind: "staff", ID: 1, Name: "admin", Role: auth.Admin})
	var units []string
	for i := range 24 {
		code := fmt.Sprintf("2-1-%d%02d", 1+i/4, 1+i%4)
		if _, err := e.es.CreateUnit(ctx, estate.UnitInput{Code: code, Area: 9000, HandoverDate: "2020-01-01"}); err != nil {
			b.Fatal(err)
		}
		units = append(units, code)
	}
	jar, _ := cookiejar.New(nil)
	clerk := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	res, err := clerk.Post(e.url+"/api/v1/login", "application/json", strings.NewReader(`{"username":"clerk","password":"password-clerk"}`))
	if err != nil || res.StatusCode != 200 {
		b.Fatalf("login: %v %v", res, err)
	}
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	json.NewDecoder(res.Body).Decode(&login)
	res.Body.Close()
	get := func(path string) []byte {
		res, err := clerk.Get(e.url + path)
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("GET %s: %v %v", path, res, err)
		}
		defer res.Body.Close()
		var buf strings.Builder
		bufio.NewReader(res.Body).WriteTo(&buf)
		return []byte(buf.String())
	}
	// The registration page, and its scanner stream.
	get("/mail/new")
	stream, err := clerk.Get(e.url + "/mail/scans")
	if err != nil || stream.StatusCode != 200 {
		b.Fatalf("the scanner stream: %v %v", stream, err)
	}
	defer stream.Body.Close()
	scans := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev struct{ Code string }
				json.Unmarshal([]byte(data), &ev)
				scans <- ev.Code
			}
		}
	}()
	for deadline := time.Now().Add(5 * time.Second); feed.Watchers() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the stream never watched the scanner")
		}
	}
	n := 0
	for b.Loop() {
		var toPage []time.Duration
		var wire time.Duration
		start := time.Now()
		form := url.Values{}
		row := 0
		for i := range items {
			code := fmt.Sprintf("SF%013d", int64(n)*7919+1)
			n++
			wire += time.Duration(len(code)+2) * 10 * time.Second / 9600
			t0 := time.Now()
			sim.Scan(code)
			select {
			case got := <-scans:
				if got != code {
					b.Fatalf("scanned %s, the page got %s", code, got)
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("scan %d never reached the page", i)
			}
			toPage = append(toPage, time.Since(t0))
			unit := units[i%len(units)]
			var hints []struct{ Code string }
			if err := json.Unmarshal(get("/mail/units?q="+url.QueryEscape(unit)), &hints); err != nil || len(hints) == 0 || hints[0].Code != unit {
				b.Fatalf("type-ahead for %s: %+v %v", unit, hints, err)
			}
			k := strconv.Itoa(row)
			form.Set("tracking-"+k, code)
			form.Set("type-"+k, "express")
			form.Set("unit-"+k, unit)
			form.Set("condition-"+k, "ok")
			form.Set("storage-"+k, "shelf")
			form.Set("slot-"+k, "A-"+strconv.Itoa(1+i%9))
			row++
			if row == 10 || i == items-1 {
				form.Set("_csrf", login.CSRF)
				form.Set("carrier", "顺丰速运")
				form.Set("action", "register")
				res, err := clerk.PostForm(e.url+"/mail/new", form) // follows to the page listing them
				if err != nil || res.StatusCode != 200 || res.Request.URL.Query().Get("done") == "" {
					b.Fatalf("registering a batch: %v %v", res, err)
				}
				res.Body.Close()
				form, row = url.Values{}, 0
			}
		}
		total := time.Since(start)
		var waiting int
		if err := e.db.Get(context.Background(), &waiting, "SELECT COUNT(*) FROM mail_items WHERE state = 'waiting'"); err != nil || waiting != n {
			b.Fatalf("%d items waiting, %d registered: %v", waiting, n, err)
		}
		slices.Sort(toPage)
		per := total / time.Duration(items)
		scanner := wire / time.Duration(items)
		b.ReportMetric(float64(items)/total.Minutes(), "items/min")
		b.ReportMetric(float64(scanner.Microseconds())/1000, "scanner-ms/item")
		b.ReportMetric(float64(toPage[len(toPage)/2].Microseconds())/1000, "scan-to-page-p50-ms")
		b.ReportMetric(float64((per-scanner).Microseconds())/1000, "onecard-ms/item")
		b.ReportMetric(float64(per-scanner)/float64(per), "onecard-share")
	}
}
