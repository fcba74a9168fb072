package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"onecard/auth"
	"onecard/billing"
	"onecard/cards"
	"onecard/estate"
	"onecard/fleet"
	"onecard/kiosk"
	"onecard/mailroom"
	"onecard/server"
	"onecard/store"
	"onecard/store/storetest"
	"onecard/web"
)

// BenchmarkKioskBills measures the kiosk's bills page for an identified
// owner under load: K virtual kiosks (ONECARD_BENCH_KIOSKS, 100), each an
// enrolled kiosk with its own keep-alive connection and an owner of its
// own unit identified by PIN, each asking GET /kiosk/bills back to back
// for ONECARD_BENCH_SECONDS (5). Every unit has a per-area fee's bills for
// four months (September and October paid by one cash payment with its
// receipt, November and December open and overdue), so every query of
// billing.Service.Account finds rows.
//
// The baseline, measured first in the same process with the same load
// tool and the same K clients: a bare Fiber app answering GET /hello with
// "hello".
//
// Reported: requests/s (completed requests ÷ wall time), p50 and p99
// (nearest rank) of both, and ratio = onecard's rps ÷ the baseline's (the
// issue's target: at least 0.25). Every response is checked (200 and the
// unit's code, or "hello"); any error fails the benchmark.
//
// ONECARD_BENCH_CPUPROFILE=path writes a CPU profile of each load phase
// to path-hello and path-bills (do not combine with -cpuprofile).
func BenchmarkKioskBills(b *testing.B) {
	k := kioskBenchInt(b, "ONECARD_BENCH_KIOSKS", 100)
	dur := time.Duration(kioskBenchInt(b, "ONECARD_BENCH_SECONDS", 5)) * time.Second
	e := benchStart(b, storetest.SQLite(b))
	vks := kioskBenchSite(b, e, k)
	helloURL := helloApp(b)

	for b.Loop() {
		stop := kioskBenchProfile(b, "hello")
		hello := kioskLoad(dur, vks, func(vk *virtualKiosk) *http.Request {
			req, _ := http.NewRequest("GET", helloURL, nil)
			return req
		}, func(_ *virtualKiosk, body []byte) bool { return string(body) == "hello" })
		stop()
		hello.check(b, "hello")

		// Identified just before the load, which then touches every
		// session long before it idles out.
		began := time.Now()
		for _, vk := range vks {
			vk.identify(b)
		}
		if took := time.Since(began); took > e.kiosks.Idle()/2 {
			b.Fatalf("identifying %d kiosks took %v: sessions idle out after %v", k, took, e.kiosks.Idle())
		}
		stop = kioskBenchProfile(b, "bills")
		bills := kioskLoad(dur, vks, func(vk *virtualKiosk) *http.Request {
			req, _ := http.NewRequest("GET", e.url+"/kiosk/bills", nil)
			req.Header.Set("Cookie", vk.cookies)
			return req
		}, func(vk *virtualKiosk, body []byte) bool { return bytes.Contains(body, vk.want) })
		stop()
		bills.check(b, "bills")

		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(bills.rps(), "rps")
		b.ReportMetric(ms(bills.pct(0.50)), "p50-ms")
		b.ReportMetric(ms(bills.pct(0.99)), "p99-ms")
		b.ReportMetric(hello.rps(), "hello-rps")
		b.ReportMetric(ms(hello.pct(0.50)), "hello-p50-ms")
		b.ReportMetric(ms(hello.pct(0.99)), "hello-p99-ms")
		b.ReportMetric(bills.rps()/hello.rps(), "ratio")
		b.ReportMetric(float64(k), "kiosks")
		b.ReportMetric(bills.cpuPerReq(), "cpu-us/req")
		b.ReportMetric(hello.cpuPerReq(), "hello-cpu-us/req")
		b.Logf("hello: %d requests in %v, %.2f CPUs busy; bills: %d requests in %v, %.2f CPUs busy, %d bytes a page",
			len(hello.lat), hello.wall.Round(time.Millisecond), hello.cpu.Seconds()/hello.wall.Seconds(),
			len(bills.lat), bills.wall.Round(time.Millisecond), bills.cpu.Seconds()/bills.wall.Seconds(), bills.size)
	}
}

// benchStart is the harness's startFull for a benchmark (startFull takes a
// *testing.T): no card encoder, no payment terminal or gateway, no running
// fleet, default kiosk options. Keep it in step with startFull. The env's
// t is nil, so its client helpers (as, kioskClient, anon().do) are not for
// benchmarks.
func benchStart(b *testing.B, db *store.DB) *env {
	b.Helper()
	ctx := context.Background()
	es, err := estate.Open(ctx, db, "test", "测试小区", "Asia/Shanghai")
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	bill, err := billing.Open(ctx, db, es.Site(), billing.Options{Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	as := auth.New(db, auth.DefaultPolicy)
	for _, r := range auth.Roles {
		if _, err := as.CreateStaff(ctx, auth.NewStaff{Username: string(r), Role: r, Password: "password-" + string(r)}); err != nil {
			b.Fatal(err)
		}
	}
	fl, err := fleet.New(db, es.Site().ID, "test", fleet.Options{Log: quiet})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := cards.OpenRegister(ctx, cards.RegisterDeps{DB: db, Estate: es, Billing: bill, Fleet: fl,
		Keys: cards.Keys{Master: []byte("site master key site master key!"), MAC: []byte("site mac key site mac key site m")}})
	if err != nil {
		b.Fatal(err)
	}
	kiosks := kiosk.New(db, es, kiosk.Options{}) // the defaults: sessions idle out after 60 s
	mo := mailOptions
	mo.Log = quiet
	mail, err := mailroom.Open(ctx, db, es.Site(), mo)
	if err != nil {
		b.Fatal(err)
	}
	stopping := make(chan struct{})
	app, err := server.New(server.Deps{DB: db, Auth: as, Estate: es, Log: quiet, LoginLimit: 10000, Billing: bill, Cards: reg,
		Kiosks: kiosks, Stopping: stopping, Mail: mail, Scans: scanFeed})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go app.Listener(ln)
	b.Cleanup(func() { close(stopping); app.Shutdown() })
	return &env{db: db, app: app, url: "http://" + ln.Addr().String(), auth: as, es: es, bill: bill, cards: reg, kiosks: kiosks, mail: mail}
}

// kioskBenchNow is 2026-12-20 10:00 at the site, after the December
// bills' due date.
var kioskBenchNow = time.Date(2026, 12, 20, 2, 0, 0, 0, time.UTC)

const kioskBenchPIN = "480213"

// virtualKiosk is one enrolled kiosk with an owner at it.
type virtualKiosk struct {
	url     string
	unit    string
	csrf    string
	client  *http.Client // with the jar, for identifying
	load    *http.Client // same transport, no jar: the load sends cookies
	cookies string       // Cookie header for /kiosk/bills
	want    []byte       // in every bills page
}

// kioskBenchSite creates k units with four months of bills each (two paid
// in cash), a PIN each, and k enrolled kiosks.
func kioskBenchSite(b *testing.B, e *env, k int) []*virtualKiosk {
	b.Helper()
	ctx := context.Background()
	e.bill.SetClock(func() time.Time { return kioskBenchNow })
	admin := auth.WithActor(ctx, auth.Actor{Kind: "staff", ID: 1, Name: "admin", Role: auth.Admin})
	units := make([]string, k)
	for i := range units {
		// 1-1-101, 1-1-102, 1-1-201 … 30 floors, 2 rooms, 2 entrances.
		units[i] = fmt.Sprintf("%d-%d-%d%02d", 1+i/120, 1+(i/60)%2, 1+(i/2)%30, 1+i%2)
		if _, err := e.es.CreateUnit(ctx, estate.UnitInput{Code: units[i], Area: estate.Area(8000 + 37*i), HandoverDate: "2020-01-01"}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := e.bill.SaveFeeItem(admin, billing.FeeItem{Code: "service", Name: "物业服务费", Kind: "per_area", PriceFen: 150}); err != nil {
		b.Fatal(err)
	}
	for _, p := range []string{"2026-09", "2026-10", "2026-11", "2026-12"} {
		if g, err := e.bill.Generate(admin, p); err != nil || g.Created != k {
			b.Fatalf("generate %s: %+v %v", p, g, err)
		}
	}
	vks := make([]*virtualKiosk, k)
	for i, u := range units {
		a, err := e.bill.Account(ctx, u)
		if err != nil || len(a.Open) != 4 {
			b.Fatalf("account %s: %+v %v", u, a, err)
		}
		// September and October in cash: paid bills and a receipt.
		in := billing.PayInput{IdemKey: fmt.Sprintf("bench-%06d", i), Unit: u, Method: "cash", BillIDs: []int64{a.Open[0].ID, a.Open[1].ID},
			AmountFen: a.Open[0].Outstanding() + a.Open[1].Outstanding()}
		in.TenderedFen = in.AmountFen
		if _, err := e.bill.Pay(admin, in); err != nil {
			b.Fatalf("pay %s: %v", u, err)
		}
		if err := e.kiosks.SetPIN(admin, u, kioskBenchPIN); err != nil {
			b.Fatal(err)
		}
		_, code, err := e.kiosks.Register(admin, kiosk.Kiosk{Code: fmt.Sprintf("k%03d", i), Name: fmt.Sprintf("大堂 %d", i)})
		if err != nil {
			b.Fatal(err)
		}
		kk, cred, err := e.kiosks.Enrol(ctx, code)
		if err != nil {
			b.Fatal(err)
		}
		jar, _ := cookiejar.New(nil)
		base, _ := url.Parse(e.url)
		jar.SetCookies(base, []*http.Cookie{{Name: web.KioskCookie, Value: cred, Path: "/"}})
		tr := &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 5 * time.Minute}
		noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		vks[i] = &virtualKiosk{url: e.url, unit: u, csrf: kk.CSRF,
			client: &http.Client{Transport: tr, Jar: jar, CheckRedirect: noRedirect},
			load:   &http.Client{Transport: tr, CheckRedirect: noRedirect},
			want:   []byte(" " + u + "</h1>")}
	}
	return vks
}

// identify enters the unit and PIN at the kiosk and keeps the session.
func (vk *virtualKiosk) identify(b *testing.B) {
	b.Helper()
	req, _ := http.NewRequest("POST", vk.url+"/kiosk/pin", strings.NewReader(url.Values{"unit": {vk.unit}, "pin": {kioskBenchPIN}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(web.CSRFHeader, vk.csrf)
	res, err := vk.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 303 || res.Header.Get("Location") != "/kiosk/bills" {
		b.Fatalf("PIN for %s: %d %s", vk.unit, res.StatusCode, body)
	}
	u, _ := url.Parse(vk.url + "/kiosk/bills")
	var cs []string
	for _, c := range vk.client.Jar.Cookies(u) {
		cs = append(cs, c.Name+"="+c.Value)
	}
	if len(cs) != 2 {
		b.Fatalf("cookies for %s: %v", vk.unit, cs)
	}
	vk.cookies = strings.Join(cs, "; ")
}

// helloApp is the baseline: a bare Fiber app on a loopback port; it
// returns the URL of its GET /hello.
func helloApp(b *testing.B) string {
	b.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/hello", func(c *fiber.Ctx) error { return c.SendString("hello") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go app.Listener(ln)
	b.Cleanup(func() { app.Shutdown() })
	return "http://" + ln.Addr().String() + "/hello"
}

// loadResult is one load phase.
type loadResult struct {
	lat   []time.Duration // every completed request's
	wall  time.Duration   // from the start until the last client stopped
	cpu   time.Duration   // the process's CPU time (user + system) meanwhile: server and clients
	errs  int
	first string // the first error
	size  int    // bytes of the largest body
}

func (r *loadResult) rps() float64 { return float64(len(r.lat)) / r.wall.Seconds() }

// cpuPerReq is the process's CPU time per completed request, in µs: less
// sensitive than rps to other work on the machine.
func (r *loadResult) cpuPerReq() float64 { return float64(r.cpu.Microseconds()) / float64(len(r.lat)) }

// processCPU is the CPU time the process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pct is the p-th percentile by nearest rank (lat is sorted).
func (r *loadResult) pct(p float64) time.Duration {
	return r.lat[max(0, min(len(r.lat), int(math.Ceil(float64(len(r.lat))*p)))-1)]
}

func (r *loadResult) check(b *testing.B, what string) {
	b.Helper()
	if r.errs > 0 || len(r.lat) == 0 {
		b.Fatalf("%s: %d errors of %d requests; first: %s", what, r.errs, len(r.lat)+r.errs, r.first)
	}
}

// kioskLoad has every virtual kiosk send the request newReq makes, one
// after another on its keep-alive connection, for d; ok checks each 200
// response's body.
func kioskLoad(d time.Duration, vks []*virtualKiosk, newReq func(*virtualKiosk) *http.Request, ok func(*virtualKiosk, []byte) bool) *loadResult {
	type part struct {
		lat   []time.Duration
		errs  int
		first string
		size  int
	}
	parts := make([]part, len(vks))
	var wg sync.WaitGroup
	cpu0 := processCPU()
	start := time.Now()
	deadline := start.Add(d)
	for i, vk := range vks {
		wg.Add(1)
		go func(p *part) {
			defer wg.Done()
			p.lat = make([]time.Duration, 0, 4096)
			var buf bytes.Buffer
			fail := func(msg string) {
				if p.errs == 0 {
					p.first = msg
				}
				p.errs++
			}
			for time.Now().Before(deadline) {
				req := newReq(vk)
				t0 := time.Now()
				res, err := vk.load.Do(req)
				if err != nil {
					fail(err.Error())
					time.Sleep(10 * time.Millisecond)
					continue
				}
				buf.Reset()
				_, err = buf.ReadFrom(res.Body)
				res.Body.Close()
				took := time.Since(t0)
				switch {
				case err != nil:
					fail(err.Error())
				case res.StatusCode != 200:
					fail(fmt.Sprintf("%s: %d %s %.200s", vk.unit, res.StatusCode, res.Header.Get("Location"), buf.Bytes()))
				case !ok(vk, buf.Bytes()):
					fail(fmt.Sprintf("%s: body %.300s", vk.unit, buf.Bytes()))
				default:
					p.lat = append(p.lat, took)
					p.size = buf.Len()
				}
			}
		}(&parts[i])
	}
	wg.Wait()
	r := &loadResult{wall: time.Since(start), cpu: processCPU() - cpu0}
	for _, p := range parts {
		r.lat = append(r.lat, p.lat...)
		if p.errs > 0 && r.errs == 0 {
			r.first = p.first
		}
		r.errs += p.errs
		r.size = max(r.size, p.size)
	}
	slices.Sort(r.lat)
	return r
}

func kioskBenchInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// kioskBenchProfile writes a CPU profile of one load phase to
// $ONECARD_BENCH_CPUPROFILE-<name> when that is set; it returns the stop.
func kioskBenchProfile(b *testing.B, name string) func() {
	base := os.Getenv("ONECARD_BENCH_CPUPROFILE")
	if base == "" {
		return func() {}
	}
	f, err := os.Create(base + "-" + name)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
