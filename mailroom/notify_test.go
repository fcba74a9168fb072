package mailroom_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"onecard/mailroom"
	"onecard/store"
	"onecard/store/storetest"
)

// hook is a webhook receiver answering with the statuses given, in turn
// (then 200), checking each request's signature.
type hook struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	status []int
	got    []mailroom.Message
	calls  int
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get("X-Onecard-Timestamp")
	if sig := r.Header.Get("X-Onecard-Signature"); sig != "sha256="+mailroom.Sign(h.secret, ts, body) || ts == "" {
		h.t.Errorf("bad signature %q", sig)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var m mailroom.Message
	if err := json.Unmarshal(body, &m); err != nil || r.Header.Get("X-Onecard-Message-Id") == "" {
		h.t.Errorf("body %s: %v", body, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	code := http.StatusOK
	if len(h.status) > 0 {
		code, h.status = h.status[0], h.status[1:]
	}
	if code == http.StatusOK {
		h.got = append(h.got, m)
	}
	w.WriteHeader(code)
}

func (h *hook) count() int { h.mu.Lock(); defer h.mu.Unlock(); return h.calls }

func (h *hook) received() []mailroom.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]mailroom.Message(nil), h.got...)
}

func (h *hook) answer(status ...int) { h.mu.Lock(); h.status = status; h.mu.Unlock() }

func TestWebhookNotifierStatuses(t *testing.T) {
	secret := []byte("s3cret")
	for _, tc := range []struct {
		status int
		giveUp bool
	}{{200, false}, {204, false}, {500, false}, {503, false}, {429, false}, {408, false}, {400, true}, {404, true}, {401, true}} {
		h := &hook{t: t, secret: secret, status: []int{tc.status}}
		srv := httptest.NewServer(h)
		w := &mailroom.WebhookNotifier{URL: srv.URL, Secret: secret, Timeout: 2 * time.Second}
		err := w.Notify(context.Background(), mailroom.Message{ID: 9, Kind: mailroom.KindArrival, Text: "您好"})
		srv.Close()
		switch {
		case tc.status < 300 && err != nil:
			t.Errorf("HTTP %d: %v", tc.status, err)
		case tc.status >= 300 && err == nil:
			t.Errorf("HTTP %d: no error", tc.status)
		case tc.status >= 300 && errors.Is(err, mailroom.ErrGiveUp) != tc.giveUp:
			t.Errorf("HTTP %d: %v (give up: %v)", tc.status, err, errors.Is(err, mailroom.ErrGiveUp))
		}
	}
	// A receiver that does not answer in time: retried, not given up.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	w := &mailroom.WebhookNotifier{URL: srv.URL, Secret: secret, Timeout: 50 * time.Millisecond}
	if err := w.Notify(context.Background(), mailroom.Message{ID: 1}); err == nil || errors.Is(err, mailroom.ErrGiveUp) {
		t.Fatalf("timeout: %v", err)
	}
}

// Retries with backoff on 5xx, delivered once; a 4xx fails the notice for
// good.
func TestWebhookRetries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{})
		secret := []byte("k")
		h := &hook{t: t, secret: secret, status: []int{503, 502}}
		srv := httptest.NewServer(h)
		defer srv.Close()
		w := &mailroom.WebhookNotifier{URL: srv.URL, Secret: secret, Timeout: 2 * time.Second}
		ctx := context.Background()
		it := r.register(t, parcel("SF8000000000001"))
		deliver := func(want int) {
			t.Helper()
			if n, err := r.m.DeliverNotifications(ctx, w); err != nil || n != want {
				t.Fatalf("delivered %d, %v; want %d", n, err, want)
			}
		}
		deliver(0) // 503
		ns, _ := r.m.Notifications(ctx)
		if ns[0].State != "queued" || ns[0].Attempts != 1 || !ns[0].NextAt.Equal(start.Add(30*time.Second)) || !strings.Contains(ns[0].LastError, "503") {
			t.Fatalf("after a 503: %+v", ns[0])
		}
		deliver(0) // not due yet
		if h.count() != 1 {
			t.Fatalf("%d calls before the backoff ended", h.count())
		}
		r.clock.Add(31 * time.Second)
		deliver(0) // 502
		ns, _ = r.m.Notifications(ctx)
		if ns[0].Attempts != 2 || !ns[0].NextAt.Equal(start.Add(31*time.Second+60*time.Second)) {
			t.Fatalf("after a 502: %+v", ns[0])
		}
		r.clock.Add(61 * time.Second)
		deliver(1)
		r.clock.Add(time.Hour)
		deliver(0)
		if got := h.received(); h.count() != 3 || len(got) != 1 || got[0].Items[0].Number != it.Number || got[0].Unit != "1-1-101" ||
			!strings.Contains(got[0].Text, "前台签收") {
			t.Fatalf("calls %d, got %+v", h.count(), got)
		}
		ns, _ = r.m.Notifications(ctx)
		if ns[0].State != "sent" || ns[0].SentAt == nil {
			t.Fatalf("sent: %+v", ns[0])
		}
		hist, err := r.m.History(ctx, "sf8000000000001")
		if err != nil || len(hist) != 2 || hist[0].Kind != "registered" || hist[1].Kind != "notified" {
			t.Fatalf("history %+v %v", hist, err)
		}

		// 400: failed at once, never again by itself; the desk retries.
		h.answer(400)
		r.register(t, parcel("SF8000000000002"))
		deliver(0)
		r.clock.Add(2 * time.Hour)
		deliver(0)
		ns, _ = r.m.Notifications(ctx)
		if last := ns[len(ns)-1]; last.State != "failed" || last.Attempts != 1 || h.count() != 4 {
			t.Fatalf("after a 400: %+v, %d calls", last, h.count())
		}
		if err := r.m.RetryNotification(r.clerk, ns[len(ns)-1].ID); err != nil {
			t.Fatal(err)
		}
		deliver(1)
		wantCode(t, "retry of a sent notice", r.m.RetryNotification(r.clerk, ns[len(ns)-1].ID), "notification_not_failed")
	})
}

// Attempts end after MaxAttempts.
func TestNotifyGivesUpAfterMaxAttempts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{MaxAttempts: 3, RetryBase: time.Second, RetryMax: 2 * time.Second})
		r.register(t, parcel("SF8100000000001"))
		boom := errors.New("gateway down")
		rec := &recorder{fail: []error{boom, boom, boom, boom}}
		for range 5 {
			if _, err := r.m.DeliverNotifications(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			r.clock.Add(3 * time.Second)
		}
		ns, _ := r.m.Notifications(context.Background())
		if ns[0].State != "failed" || ns[0].Attempts != 3 || len(rec.fail) != 1 {
			t.Fatalf("%+v, %d failures left", ns[0], len(rec.fail))
		}
	})
}

// Ordinary post waits an hour and goes out as one message per unit;
// express goes at once; a collected item's notice is dropped.
func TestOrdinaryMailDigest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{})
		letter := mailroom.RegisterInput{Type: mailroom.Letter, Carrier: "中国邮政", Unit: "1-1-101", Condition: "ok", Storage: "shelf", Slot: "L"}
		var letters []mailroom.Item
		for range 3 {
			letters = append(letters, r.register(t, letter))
		}
		paper := letter
		paper.Type, paper.Unit = mailroom.Newspaper, "2-1-201"
		r.register(t, paper)
		r.register(t, parcel("SF8200000000001"))
		rec := &recorder{}
		ctx := context.Background()
		if n, err := r.m.DeliverNotifications(ctx, rec); err != nil || n != 1 || rec.messages()[0].Items[0].Type != mailroom.Express {
			t.Fatalf("at once: %d %v %+v", n, err, rec.messages())
		}
		// One letter is collected before the hour is up.
		if _, err := r.m.Collect(r.clerk, mailroom.CollectInput{ItemIDs: []int64{letters[2].ID}, CollectorKind: "household", CollectorName: "张三"}); err != nil {
			t.Fatal(err)
		}
		r.clock.Add(time.Hour)
		if n, err := r.m.DeliverNotifications(ctx, rec); err != nil || n != 2 {
			t.Fatalf("after an hour: %d %v", n, err)
		}
		msgs := rec.messages()
		var unit1 mailroom.Message
		for _, m := range msgs[1:] {
			if m.Unit == "1-1-101" {
				unit1 = m
			}
		}
		if len(unit1.Items) != 2 || unit1.Items[0].Number != letters[0].Number || !strings.Contains(unit1.Text, "前台领取") {
			t.Fatalf("digest %+v", unit1)
		}
		ns, _ := r.m.Notifications(ctx)
		states := map[string]int{}
		for _, n := range ns {
			states[n.State]++
		}
		if states["sent"] != 4 || states["cancelled"] != 1 {
			t.Fatalf("states %v", states)
		}
	})
}

// RunNotifier delivers as items are registered; one left sending by a
// crash is failed at start, not sent again.
func TestRunNotifier(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{NotifyPoll: 20 * time.Millisecond})
		first := r.register(t, parcel("SF8300000000001"))
		if _, err := db.Exec(context.Background(), "UPDATE mail_notifications SET state = 'sending' WHERE item_id = ?", first.ID); err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.m.RunNotifier(ctx, rec) }()
		r.register(t, parcel("SF8300000000002"))
		waitFor(t, "a message", func() bool { return len(rec.messages()) == 1 })
		time.Sleep(100 * time.Millisecond)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		msgs := rec.messages()
		if len(msgs) != 1 || msgs[0].Items[0].Tracking != "SF8300000000002" {
			t.Fatalf("messages %+v", msgs)
		}
		ns, _ := r.m.Notifications(context.Background())
		if ns[0].State != "failed" || !strings.Contains(ns[0].LastError, "interrupted") {
			t.Fatalf("crashed notice %+v", ns[0])
		}
	})
}

func TestConsoleNotifier(t *testing.T) {
	var b strings.Builder
	n := mailroom.ConsoleNotifier{Log: slogTo(&b)}
	if err := n.Notify(context.Background(), mailroom.Message{ID: 4, Kind: "arrival", Unit: "1-1-101", Text: "您好，快递到了"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "unit=1-1-101") || !strings.Contains(b.String(), "您好，快递到了") {
		t.Fatalf("log %q", b.String())
	}
}
