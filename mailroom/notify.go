package mailroom

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"onecard/auth"
	"onecard/fault"
	"onecard/store"
)

// Notifier tells residents about their mail: an SMS or WeChat gateway,
// the estate's app, a log. An error wrapping ErrGiveUp is final (the
// message is refused as it is); any other is retried with backoff.
type Notifier interface {
	Notify(ctx context.Context, m Message) error
}

// ErrGiveUp marks a notifier's error as final: retrying cannot help.
var ErrGiveUp = errors.New("mailroom: notification refused for good")

// Message kinds.
const (
	KindArrival  = "arrival"  // an item came (with the locker door and code when in a locker)
	KindReminder = "reminder" // not collected after the reminder days
	KindCode     = "code"     // a (new) pickup code
	KindReturned = "returned" // returned to the courier
)

// Message is one notice to a unit. ID is the same on every attempt to
// deliver it (receivers drop repeats by it). Text is the message in
// Chinese, ready to send; the other fields let a notifier write its own.
type Message struct {
	ID        int64         `json:"id"`
	Kind      string        `json:"kind"`
	Urgent    bool          `json:"urgent"`
	Site      string        `json:"site"`
	Unit      string        `json:"unit"`
	Recipient string        `json:"recipient,omitempty"`
	Items     []MessageItem `json:"items"`
	// Code is the pickup code, on arrival and code notices of a locker
	// item.
	Code string `json:"code,omitempty"`
	Text string `json:"text"`
	At   string `json:"at"` // RFC 3339, when it was composed
}

// MessageItem is an item as a message names it.
type MessageItem struct {
	Number    string `json:"number"`
	Type      string `json:"type"`
	TypeName  string `json:"type_name"`
	Carrier   string `json:"carrier"`
	Tracking  string `json:"tracking,omitempty"`
	CollectAt string `json:"collect_at"` // locker or desk
	Door      int    `json:"door,omitempty"`
	HoldUntil string `json:"hold_until"`
}

// ConsoleNotifier writes messages to a log (the demo, or a site without
// a gateway).
type ConsoleNotifier struct{ Log *slog.Logger }

// Notify logs m.
func (c ConsoleNotifier) Notify(ctx context.Context, m Message) error {
	log := c.Log
	if log == nil {
		log = slog.Default()
	}
	log.InfoContext(ctx, "mailroom: notification", "id", m.ID, "kind", m.Kind, "unit", m.Unit, "recipient", m.Recipient,
		"items", len(m.Items), "text", m.Text)
	return nil
}

// WebhookNotifier posts each message as JSON to URL. The body is signed:
// X-Onecard-Signature is "sha256=" and the hex HMAC-SHA256, under Secret,
// of the X-Onecard-Timestamp header's value, a dot and the body;
// X-Onecard-Message-Id repeats the message's id. A 2xx answer delivers it;
// 408, 429, 5xx, a timeout or a network error are retried; any other 4xx
// is final.
type WebhookNotifier struct {
	URL    string
	Secret []byte
	// Timeout bounds one attempt (10 s).
	Timeout time.Duration
	// Client sends the requests (nil: http.DefaultClient, with Timeout
	// applied per request).
	Client *http.Client
}

// Notify posts m.
func (w *WebhookNotifier) Notify(ctx context.Context, m Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrGiveUp, err)
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("mailroom: webhook: %w: %v", ErrGiveUp, err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Onecard-Timestamp", ts)
	req.Header.Set("X-Onecard-Message-Id", strconv.FormatInt(m.ID, 10))
	req.Header.Set("X-Onecard-Signature", "sha256="+Sign(w.Secret, ts, body))
	client := w.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("mailroom: webhook: %w", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("mailroom: webhook: HTTP %d: %s", code, strings.TrimSpace(string(snippet)))
	default:
		return fmt.Errorf("mailroom: webhook: %w: HTTP %d: %s", ErrGiveUp, code, strings.TrimSpace(string(snippet)))
	}
}

// Sign is the webhook signature of body sent at timestamp ts (hex
// HMAC-SHA256 of ts + "." + body), for receivers to check.
func Sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Notification is a queued, sent or failed notice.
type Notification struct {
	ID        int64      `db:"id" json:"id"`
	ItemID    *int64     `db:"item_id" json:"item_id,omitempty"`
	Unit      string     `db:"unit" json:"unit"`
	Kind      string     `db:"kind" json:"kind"`
	Urgent    bool       `db:"urgent" json:"urgent"`
	State     string     `db:"state" json:"state"` // queued, sending, sent, failed, cancelled
	Attempts  int        `db:"attempts" json:"attempts"`
	NextAt    time.Time  `db:"next_at" json:"next_at"`
	LastError string     `db:"last_error" json:"last_error,omitempty"`
	SentWith  *int64     `db:"sent_with" json:"sent_with,omitempty"`
	SentAt    *time.Time `db:"sent_at" json:"sent_at,omitempty"`
	CreatedAt time.Time  `db:"created_at" json:"created_at"`
}

const noteCols = `n.id, n.item_id, u.code AS unit, n.kind, n.urgent, n.state, n.attempts, n.next_at, n.last_error, n.sent_with,
	n.sent_at, n.created_at`

// Notifications lists the notices not sent (queued, sending, failed),
// oldest first, and the last 50 sent or cancelled.
func (s *Service) Notifications(ctx context.Context) ([]Notification, error) {
	out := []Notification{}
	err := s.db.Select(ctx, &out, "SELECT "+noteCols+` FROM mail_notifications n JOIN units u ON u.id = n.unit_id WHERE n.site_id = ?
		AND (n.state IN ('queued', 'sending', 'failed') OR n.id > (SELECT COALESCE(MAX(id), 0) - 50 FROM mail_notifications)) ORDER BY n.id`, s.site.ID)
	return out, err
}

// RetryNotification queues a failed notice again.
func (s *Service) RetryNotification(ctx context.Context, id int64) error {
	if _, err := staff(ctx); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE mail_notifications SET state = 'queued', next_at = ?, attempts = 0, updated_at = ? WHERE id = ? AND site_id = ? AND state = 'failed'",
			s.now(), s.now(), id, s.site.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fault.Conflict("notification", "notification_not_failed")
		}
		tx.AfterCommit(s.wake(&s.noteWake))
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.notification_retry", Entity: "mail_notification", EntityID: id})
	})
}

// RunNotifier delivers due notices through n until ctx ends (see
// DeliverNotifications). A notice is marked sending (committed) before n
// is called: one found sending at start was interrupted and may or may
// not have gone out, so it is marked failed for the desk to retry, never
// sent twice by itself.
func (s *Service) RunNotifier(ctx context.Context, n Notifier) error {
	if _, err := s.db.Exec(ctx, `UPDATE mail_notifications SET state = 'failed', last_error = 'interrupted: it may have gone out; retry if the resident did not get it',
		updated_at = ? WHERE site_id = ? AND state = 'sending'`, s.now(), s.site.ID); err != nil {
		s.log.Error("mailroom: notifications", "err", err)
	}
	wake, done := s.subscribe(&s.noteWake)
	defer done()
	t := time.NewTicker(s.o.NotifyPoll)
	defer t.Stop()
	for {
		if _, err := s.DeliverNotifications(ctx, n); err != nil && ctx.Err() == nil {
			s.log.Error("mailroom: deliver notifications", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
	}
}

// DeliverNotifications sends every notice due now through n, urgent ones
// first, and returns how many messages went out. A failure is retried
// later, RetryBase doubling up to RetryMax, until MaxAttempts or an error
// wrapping ErrGiveUp: then the notice is failed. Ordinary mail of a unit
// goes out as one message. A locker item's arrival notice waits (up to
// LockerNoticeWait) for its door to close, to carry the door and code.
// Notices of items collected or returned meanwhile are dropped.
func (s *Service) DeliverNotifications(ctx context.Context, n Notifier) (int, error) {
	sent := 0
	for ctx.Err() == nil {
		var ids []int64
		if err := s.db.Select(ctx, &ids, `SELECT id FROM mail_notifications WHERE site_id = ? AND state = 'queued' AND next_at <= ?
			ORDER BY urgent DESC, next_at, id LIMIT 20`, s.site.ID, s.now()); err != nil {
			return sent, err
		}
		if len(ids) == 0 {
			return sent, nil
		}
		progress := false
		for _, id := range ids {
			ok, err := s.deliver(ctx, n, id)
			if err != nil {
				return sent, err
			}
			if ok {
				sent++
			}
			progress = true
		}
		if !progress {
			return sent, nil
		}
	}
	return sent, ctx.Err()
}

type noteRow struct {
	ID       int64     `db:"id"`
	ItemID   *int64    `db:"item_id"`
	UnitID   int64     `db:"unit_id"`
	Unit     string    `db:"unit"`
	Kind     string    `db:"kind"`
	Urgent   bool      `db:"urgent"`
	Secret   *string   `db:"secret"`
	State    string    `db:"state"`
	Attempts int       `db:"attempts"`
	Created  time.Time `db:"created_at"`
	Day      *string   `db:"reminder_day"`
}

// deliver sends notice id (and, for ordinary mail, the unit's other
// ordinary notices); true if a message went out.
func (s *Service) deliver(ctx context.Context, n Notifier, id int64) (bool, error) {
	var row noteRow
	err := s.db.Get(ctx, &row, `SELECT n.id, n.item_id, n.unit_id, u.code AS unit, n.kind, n.urgent, n.secret, n.state, n.attempts,
		n.created_at, n.reminder_day FROM mail_notifications n JOIN units u ON u.id = n.unit_id WHERE n.id = ?`, id)
	if err != nil {
		return false, err
	}
	if row.State != "queued" {
		return false, nil // went with another message meanwhile
	}
	st, err := s.Settings(ctx)
	if err != nil {
		return false, err
	}
	now := s.now()
	rows := []noteRow{row}
	var items []Item
	if row.ItemID != nil {
		it, err := s.item(ctx, s.db, *row.ItemID)
		if err != nil {
			return false, err
		}
		if it.State != StateWaiting && row.Kind != KindReturned {
			_, err := s.db.Exec(ctx, "UPDATE mail_notifications SET state = 'cancelled', secret = NULL, updated_at = ? WHERE id = ? AND state = 'queued'", now, id)
			return false, err
		}
		if row.Kind == KindArrival && it.Storage == StorageLocker && !it.InLocker && now.Sub(row.Created) < s.o.LockerNoticeWait {
			_, err := s.db.Exec(ctx, "UPDATE mail_notifications SET next_at = ?, updated_at = ? WHERE id = ? AND state = 'queued'",
				minTime(row.Created.Add(s.o.LockerNoticeWait), now.Add(time.Minute)), now, id)
			return false, err
		}
		items = append(items, it)
		if row.Kind == KindArrival && !row.Urgent {
			var more []noteRow
			if err := s.db.Select(ctx, &more, `SELECT n.id, n.item_id, n.unit_id, u.code AS unit, n.kind, n.urgent, n.secret, n.state, n.attempts,
				n.created_at, n.reminder_day FROM mail_notifications n JOIN units u ON u.id = n.unit_id JOIN mail_items i ON i.id = n.item_id
				WHERE n.unit_id = ? AND n.kind = 'arrival' AND n.urgent = ? AND n.state = 'queued' AND n.id <> ? AND i.state = 'waiting'
				ORDER BY n.id LIMIT 30`, row.UnitID, false, id); err != nil {
				return false, err
			}
			for _, m := range more {
				it, err := s.item(ctx, s.db, *m.ItemID)
				if err != nil {
					return false, err
				}
				rows, items = append(rows, m), append(items, it)
			}
		}
	}
	// Mark them sending, committed, before the notifier is called.
	var taken []noteRow
	var takenItems []Item
	for i, r := range rows {
		res, err := s.db.Exec(ctx, "UPDATE mail_notifications SET state = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ? AND state = 'queued'", now, r.ID)
		if err != nil {
			return false, err
		}
		if k, _ := res.RowsAffected(); k == 1 {
			taken = append(taken, r)
			if i < len(items) {
				takenItems = append(takenItems, items[i])
			}
		}
	}
	if len(taken) == 0 || taken[0].ID != id {
		for _, r := range taken { // the lead notice went elsewhere: give the others back
			s.db.Exec(ctx, "UPDATE mail_notifications SET state = 'queued', attempts = attempts - 1 WHERE id = ? AND state = 'sending'", r.ID)
		}
		return false, nil
	}
	msg := s.compose(row, takenItems, st, now)
	nerr := n.Notify(ctx, msg)
	bg := context.WithoutCancel(ctx)
	if nerr == nil {
		err := s.db.Tx(bg, func(tx *store.Tx) error {
			for _, r := range taken {
				if _, err := tx.Exec(bg, "UPDATE mail_notifications SET state = 'sent', secret = NULL, sent_with = ?, sent_at = ?, last_error = '', updated_at = ? WHERE id = ?",
					id, s.now(), s.now(), r.ID); err != nil {
					return err
				}
				if r.ItemID != nil {
					if err := s.event(bg, tx, *r.ItemID, "notified", r.Kind); err != nil {
						return err
					}
				}
			}
			return nil
		})
		return err == nil, err
	}
	final := errors.Is(nerr, ErrGiveUp) || row.Attempts+1 >= s.o.MaxAttempts
	s.log.Warn("mailroom: notification failed", "id", id, "attempt", row.Attempts+1, "final", final, "err", nerr)
	for _, r := range taken {
		var err error
		if final {
			_, err = s.db.Exec(bg, "UPDATE mail_notifications SET state = 'failed', last_error = ?, updated_at = ? WHERE id = ?", trunc(nerr.Error(), 300), s.now(), r.ID)
		} else {
			_, err = s.db.Exec(bg, "UPDATE mail_notifications SET state = 'queued', last_error = ?, next_at = ?, updated_at = ? WHERE id = ?",
				trunc(nerr.Error(), 300), s.now().Add(s.backoff(r.Attempts+1)), s.now(), r.ID)
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

// backoff is the wait after the nth failed attempt.
func (s *Service) backoff(attempt int) time.Duration {
	d := s.o.RetryBase
	for i := 1; i < attempt && d < s.o.RetryMax; i++ {
		d *= 2
	}
	return min(d, s.o.RetryMax)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// compose writes the message for a notice and its items.
func (s *Service) compose(row noteRow, items []Item, st Settings, now time.Time) Message {
	m := Message{ID: row.ID, Kind: row.Kind, Urgent: row.Urgent, Site: s.site.Name, Unit: row.Unit, At: now.Format(time.RFC3339)}
	if row.Secret != nil {
		m.Code = *row.Secret
	}
	var names []string
	for _, it := range items {
		mi := MessageItem{Number: it.Number, Type: it.Type, TypeName: it.TypeName, Carrier: it.Carrier, CollectAt: it.CollectAt, HoldUntil: it.HoldUntil}
		if it.Tracking != nil {
			mi.Tracking = *it.Tracking
		}
		if it.InLocker && it.Door != nil {
			mi.Door = *it.Door
		}
		m.Items = append(m.Items, mi)
		if m.Recipient == "" {
			m.Recipient = it.Recipient
		}
		names = append(names, describe(it))
	}
	what := strings.Join(names, "、")
	greet := "您好，"
	if m.Recipient != "" {
		greet = m.Recipient + "，您好！"
	}
	var b strings.Builder
	b.WriteString(greet)
	switch row.Kind {
	case KindArrival, KindCode:
		locker := len(items) == 1 && items[0].CollectAt == "locker" && m.Code != ""
		switch {
		case row.Kind == KindArrival:
			fmt.Fprintf(&b, "%s有您的%s已到%s服务中心。", m.Unit, what, m.Site)
		case locker:
			fmt.Fprintf(&b, "这是您的%s的取件码。", what)
		}
		if locker {
			fmt.Fprintf(&b, "请到大堂快递柜%s，凭取件码 %s 取件（取件码仅可使用一次）。", doorLabel(*items[0].Door), m.Code)
		} else if len(items) == 1 && items[0].NeedsSignature {
			b.WriteString("请本人（或持您书面委托的代领人）到服务中心前台签收。")
		} else {
			b.WriteString("请到服务中心前台领取。")
		}
		if len(items) > 0 {
			fmt.Fprintf(&b, "保管至%s，逾期将退回。", items[0].HoldUntil)
		}
	case KindReminder:
		days := 0
		if len(items) > 0 {
			days = daysBetween(items[0].RegisteredOn, s.day(now))
		}
		fmt.Fprintf(&b, "您的%s已在服务中心存放%d天，请尽快领取。", what, days)
		if len(items) > 0 {
			fmt.Fprintf(&b, "保管至%s，逾期将退回。", items[0].HoldUntil)
		}
	case KindReturned:
		fmt.Fprintf(&b, "您的%s已超过保管期限，已退回寄件方。如有疑问，请联系服务中心。", what)
	}
	b.WriteString("谢谢！")
	m.Text = b.String()
	return m
}

func describe(it Item) string {
	d := it.TypeName
	if it.Carrier != "" {
		d = it.Carrier + d
	}
	if it.Tracking != nil {
		t := *it.Tracking
		if len(t) > 4 {
			t = t[len(t)-4:]
		}
		d += "（尾号" + t + "）"
	}
	return d
}
