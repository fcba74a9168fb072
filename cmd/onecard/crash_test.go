package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"onecard/auth"
	"onecard/billing"
	"onecard/estate"
	firmwaresim "onecard/firmware-sim"
	paytermsim "onecard/firmware-sim/payterm"
	"onecard/store"
)

// TestPaymentsSurviveKills takes card payments through the payment
// terminal simulator while "onecard serve" is killed (SIGKILL) at random
// moments and started again, then checks the books against the
// terminal's journal: no double charge, no approved payment unrecorded,
// receipts without gaps, daily totals equal to the payments.
// ONECARD_CRASH_PAYMENTS sets the number of payments (default 100; the
// recorded run in docs/benchmarks.md used 1000).
func TestPaymentsSurviveKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills onecard serve many times")
	}
	n := 100
	if v, err := strconv.Atoi(os.Getenv("ONECARD_CRASH_PAYMENTS")); err == nil && v > 0 {
		n = v
	}
	dir := t.TempDir()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The books: n units with one bill each, a cashier with an API token.
	db, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	es, err := estate.Open(ctx, db, "main", "测试", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	as := auth.New(db, auth.DefaultPolicy)
	cashier, err := as.CreateStaff(ctx, auth.NewStaff{Username: "cash1", DisplayName: "cash1", Role: auth.Cashier, Password: "cash1-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	admin := auth.WithActor(ctx, auth.Actor{Kind: "staff", ID: cashier.ID, Name: "setup", Role: auth.Admin})
	_, token, err := as.CreateToken(auth.WithActor(ctx, auth.Actor{Kind: "staff", ID: cashier.ID, Name: "cash1", Role: auth.Admin}), "crash", auth.Cashier)
	if err != nil {
		t.Fatal(err)
	}
	bk, err := billing.Open(ctx, db, es.Site(), billing.Options{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bk.SaveFeeItem(admin, billing.FeeItem{Code: "other", Name: "其他", Kind: "one_off", PriceFen: 100}); err != nil {
		t.Fatal(err)
	}
	units := make([]string, n)
	for i := range units {
		r := i % 400
		units[i] = fmt.Sprintf("%d-%d-%d%02d", 1+i/400, 1+r/100, 1+(r%100)/4, 1+r%4)
		if _, err := es.CreateUnit(admin, estate.UnitInput{Code: units[i], Area: 10000, HandoverDate: "2020-01-01"}); err != nil {
			t.Fatal(err)
		}
		if _, err := bk.AddBill(admin, billing.BillInput{Unit: units[i], Item: "other", Period: "crash", AmountFen: int64(1000 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	// The terminal: the simulator outlives every server process.
	pty, err := firmwaresim.OpenPTY(filepath.Join(dir, "payterm.pty"))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := paytermsim.New(paytermsim.Options{Baud: 115200, Delay: 5 * time.Millisecond, JournalSize: n + 100})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopSim := context.WithCancel(ctx)
	simDone := make(chan struct{})
	go func() { defer close(simDone); sim.Serve(sctx, pty) }()
	defer func() { stopSim(); <-simDone; pty.Close() }()

	// The server, killed and started again.
	addr := freeAddr(t)
	base := "http://" + addr
	var (
		mu   sync.Mutex
		cmd  *exec_
		logs bytes.Buffer
	)
	start := func() {
		c := command(t, nil, "serve", "--addr", addr, "--mqtt-listen", "127.0.0.1:0", "--data-dir", dir, "--site", "main",
			"--payterm", filepath.Join(dir, "payterm.pty"), "--log-level", "warn")
		c.Stdout, c.Stderr = &lockedWriter{w: &logs, mu: &mu}, &lockedWriter{w: &logs, mu: &mu}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		cmd = &exec_{c.Process, done}
	}
	kill := func() {
		cmd.p.Signal(syscall.SIGKILL)
		<-cmd.done
	}
	start()
	defer func() { kill() }()

	client := &http.Client{Timeout: 30 * time.Second}
	post := func(path string, body any) (int, map[string]any, error) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out, nil
	}

	// The killer: once the server is ready, within 0–800 ms (while
	// payments go through), SIGKILL and start again.
	ready := func() bool {
		res, err := client.Get(base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}
	stopKiller := make(chan struct{})
	killerDone := make(chan int)
	go func() {
		kills := 0
		defer func() { killerDone <- kills }()
		for {
			for !ready() {
				select {
				case <-stopKiller:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			select {
			case <-stopKiller:
				return
			case <-time.After(rand.N(800 * time.Millisecond)):
			}
			kill()
			kills++
			start()
		}
	}()

	get := func(path string) (int, map[string]any, error) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out, nil
	}

	// The cashier: a request is repeated with its key until the server
	// answers (it may be down or dying); a payment waiting for the
	// terminal is watched until it settles or is declined; a declined one
	// (the server died before the terminal got it) is taken again with a
	// new key, as a cashier would.
	pay := func(i int, key string) string {
		for attempt := 0; ; attempt++ {
			if attempt > 600 {
				t.Fatalf("payment %d: no answer after %d attempts\n%s", i, attempt, tail(&mu, &logs))
			}
			status, out, err := post("/api/v1/payments", billing.PayInput{IdemKey: key, Unit: units[i], AmountFen: int64(1000 + i), Method: "card"})
			switch {
			case err != nil || status >= 500 || status == 0:
				time.Sleep(50 * time.Millisecond) // the server is down or dying
				continue
			case status == http.StatusConflict && code(out) == "terminal_offline":
				time.Sleep(50 * time.Millisecond) // just restarted: the port opens in a moment
				continue
			case status == http.StatusUnprocessableEntity && code(out) == "card_declined":
				return "declined"
			case status == http.StatusCreated:
				return "settled"
			case status == http.StatusAccepted:
				p, _ := out["payment"].(map[string]any)
				id, _ := p["id"].(float64)
				for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
					if status, out, err := get(fmt.Sprintf("/api/v1/payments/%d", int64(id))); err == nil && status == 200 {
						if st, _ := out["state"].(string); st == "settled" || st == "declined" {
							return st
						}
					}
				}
				t.Fatalf("payment %d (%s) still waiting after 2 minutes\n%s", i, key, tail(&mu, &logs))
			default:
				t.Fatalf("payment %d: %d %v", i, status, out)
			}
		}
	}
	retaken := 0
	for i := range units {
		for try := 0; ; try++ {
			if pay(i, fmt.Sprintf("crash-%06d-%d", i, try)) == "settled" {
				break
			}
			retaken++
		}
	}
	close(stopKiller)
	kills := <-killerDone

	// Let the last server resolve what waits, then read the books.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if waiting(t, dir) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payments still waiting for the terminal after 2 minutes\n%s", tail(&mu, &logs))
		}
		time.Sleep(500 * time.Millisecond)
	}
	kill()
	checkBooks(t, dir, sim, n)
	t.Logf("%d payments, %d kills of the server, %d declined by the terminal (never sent) and taken again", n, kills, retaken)
}

type exec_ struct {
	p    *os.Process
	done chan struct{}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func tail(mu *sync.Mutex, b *bytes.Buffer) string {
	mu.Lock()
	defer mu.Unlock()
	s := b.String()
	return s[max(0, len(s)-4000):]
}

func code(out map[string]any) string {
	if e, ok := out["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

func waiting(t *testing.T, dir string) int {
	db, err := store.Open(context.Background(), store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.Get(context.Background(), &n, "SELECT COUNT(*) FROM payments WHERE state IN ('created', 'sent', 'unknown', 'approved')"); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkBooks compares the books with the terminal's journal.
func checkBooks(t *testing.T, dir string, sim *paytermsim.Sim, n int) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pays []struct {
		Ref    string  `db:"ref"`
		Key    string  `db:"idem_key"`
		State  string  `db:"state"`
		Amount int64   `db:"amount_fen"`
		Day    *string `db:"business_day"`
	}
	if err := db.Select(ctx, &pays, "SELECT ref, idem_key, state, amount_fen, business_day FROM payments"); err != nil {
		t.Fatal(err)
	}
	byRef := map[string]int{}
	keys := map[string]int{}
	settled, sum := 0, int64(0)
	days := map[string]int64{}
	for i, p := range pays {
		byRef[p.Ref] = i
		keys[p.Key]++
		if p.State == "settled" {
			settled++
			sum += p.Amount
			days[*p.Day] += p.Amount
		}
	}
	for k, c := range keys {
		if c > 1 {
			t.Errorf("key %s: %d payments", k, c)
		}
	}
	approved := 0
	for _, e := range sim.Journal() {
		i, ok := byRef[e.Ref]
		if !ok {
			t.Errorf("the terminal has sale %s (%v), the books do not", e.Ref, e.State)
			continue
		}
		if e.State == paytermsim.Approved {
			approved++
			if pays[i].State != "settled" {
				t.Errorf("sale %s approved on the terminal, %s in the books", e.Ref, pays[i].State)
			}
		} else if pays[i].State == "settled" {
			t.Errorf("sale %s %v on the terminal, settled in the books", e.Ref, e.State)
		}
	}
	if approved != settled || settled != n {
		t.Errorf("%d approved on the terminal, %d settled in the books, %d bills", approved, settled, n)
	}
	var nums []int64
	if err := db.Select(ctx, &nums, "SELECT number FROM receipts ORDER BY number"); err != nil {
		t.Fatal(err)
	}
	for i, no := range nums {
		if no != int64(i+1) {
			t.Fatalf("receipt numbers not 1…%d without gaps: %v…", len(nums), nums[max(0, i-3):min(len(nums), i+3)])
		}
	}
	if len(nums) != settled {
		t.Errorf("%d receipts for %d settled payments", len(nums), settled)
	}
	var paid int64
	if err := db.Get(ctx, &paid, "SELECT COALESCE(SUM(paid_fen), 0) FROM bills"); err != nil {
		t.Fatal(err)
	}
	if paid != sum {
		t.Errorf("bills paid %d, payments settled %d", paid, sum)
	}
	es, err := estate.Open(ctx, db, "main", "测试", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	bk, err := billing.Open(ctx, db, es.Site(), billing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for day, want := range days {
		ops, err := bk.Operators(ctx, day)
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		for _, o := range ops {
			got += o.Totals.Payments["card"]
		}
		if got != want {
			t.Errorf("day %s: totals %d, payments %d", day, got, want)
		}
	}
	if t.Failed() {
		t.Logf("payments %d, journal %d", len(pays), len(sim.Journal()))
	}
}
