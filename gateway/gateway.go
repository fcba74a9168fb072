package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Provider is an online payment gateway, as onecard's books use it.
//
// Create opens an order: the gateway answers with what the QR code must
// encode and its own transaction id. Creating again under the same Ref with
// the same order returns the same answer (a retry after a timeout is safe);
// under the same Ref with another amount it is an *Error (ref_used).
//
// Query says what the gateway knows about a reference: State pending,
// paid, closed, or not_found (it never saw the reference: nothing was or
// will be charged under it).
//
// Close ends an order still pending, so that it can no longer be paid. If
// the owner paid first, the Status says paid and the payment must be taken
// on the books; an unknown reference is not_found.
//
// Verify checks a notification the gateway POSTed to the order's
// NotifyURL: header and body exactly as received.
type Provider interface {
	Create(ctx context.Context, o Order) (Created, error)
	Query(ctx context.Context, ref string) (Status, error)
	Close(ctx context.Context, ref string) (Status, error)
	Verify(header http.Header, body []byte) (Notification, error)
}

// Order states, in Status and Notification.
const (
	StatePending  = "pending"
	StatePaid     = "paid"
	StateClosed   = "closed"
	StateNotFound = "not_found" // Status only
)

// Limits of an order.
const (
	// MaxRef is the longest payment reference, in bytes.
	MaxRef = 32
	// MaxTxn is the longest transaction id a gateway may give.
	MaxTxn = 64
	// MaxAmountFen is the largest amount: ¥1,000,000.00, as billing's.
	MaxAmountFen = 100_000_000
	// MaxSubject is the longest subject, in bytes of UTF-8.
	MaxSubject = 128
	// MaxNotifyURL is the longest notification URL.
	MaxNotifyURL = 512
	// DefaultExpiry is how long an order without ExpiresAt may be paid.
	DefaultExpiry = 15 * time.Minute
	// MaxExpiry is the furthest ExpiresAt may be.
	MaxExpiry = 24 * time.Hour
	// MaxBody is the largest message body either side reads.
	MaxBody = 64 << 10
)

// Order is a payment to collect.
type Order struct {
	// Ref is our payment reference (billing's Payment.Ref): 1 to 32 ASCII
	// letters, digits, '-' or '_', unique per merchant.
	Ref       string
	AmountFen int64
	// Subject is what the payer's wallet shows (e.g. "3-1-502 物业服务费").
	Subject string
	// NotifyURL is where the gateway POSTs notifications: onecard's
	// NotifyHandler, reachable from the gateway.
	NotifyURL string
	// ExpiresAt is when an unpaid order closes by itself; zero means
	// DefaultExpiry from now.
	ExpiresAt time.Time
}

// Created is the gateway's answer to Create.
type Created struct {
	// QRContent is what the QR code encodes: a URL on the gateway that a
	// phone wallet opens.
	QRContent   string
	ProviderTxn string
	ExpiresAt   time.Time
}

// Status is what the gateway knows about a reference.
type Status struct {
	// State is pending, paid, closed or not_found.
	State       string
	ProviderTxn string
	AmountFen   int64
	PaidAt      time.Time // paid only
}

// Notification is a gateway's signed report that an order changed: State
// paid (with PaidAt), or closed (the payer cancelled it on the phone, or
// the gateway closed it).
type Notification struct {
	Ref         string
	ProviderTxn string
	State       string
	AmountFen   int64
	PaidAt      time.Time
}

// Error is an answer of the gateway that refuses a request. Code is one of
// the codes in docs/gateway.md (invalid_request, bad_signature,
// stale_request, replayed_nonce, unknown_merchant, not_found, ref_used,
// order_paid, order_closed, …).
type Error struct {
	HTTPStatus int
	Code       string
	Message    string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("gateway: %s (HTTP %d)", e.Code, e.HTTPStatus)
	}
	return fmt.Sprintf("gateway: %s (HTTP %d): %s", e.Code, e.HTTPStatus, e.Message)
}

// Errors of Verify and of a response that fails the same checks; the
// error returned wraps one of them and says more.
var (
	ErrMissingHeader = errors.New("gateway: signature header missing")
	ErrMalformed     = errors.New("gateway: malformed message")
	ErrStale         = errors.New("gateway: timestamp outside the window")
	ErrUnknownKey    = errors.New("gateway: signed with a key we do not know")
	ErrBadSignature  = errors.New("gateway: bad signature")
)

// ValidRef reports whether ref is a valid payment reference.
func ValidRef(ref string) bool { return validID(ref, MaxRef) }

// ValidTxn reports whether txn is a valid gateway transaction id.
func ValidTxn(txn string) bool { return validID(txn, MaxTxn) }

func validID(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// CheckOrder reports what is wrong with an order, as of now; ExpiresAt
// must already be set.
func CheckOrder(o Order, now time.Time) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
	}
	switch {
	case !ValidRef(o.Ref):
		return bad("ref %q: want 1 to %d letters, digits, '-' or '_'", o.Ref, MaxRef)
	case o.AmountFen <= 0 || o.AmountFen > MaxAmountFen:
		return bad("amount %d fen: want 1 to %d", o.AmountFen, int64(MaxAmountFen))
	case !ValidSubject(o.Subject):
		return bad("subject: want 1 to %d bytes of printable UTF-8", MaxSubject)
	case !ValidNotifyURL(o.NotifyURL):
		return bad("notify URL %q: want an absolute http or https URL", o.NotifyURL)
	case !o.ExpiresAt.After(now):
		return bad("expires_at %s is past", o.ExpiresAt.Format(time.RFC3339))
	case o.ExpiresAt.After(now.Add(MaxExpiry + time.Minute)):
		return bad("expires_at %s: at most %v ahead", o.ExpiresAt.Format(time.RFC3339), MaxExpiry)
	}
	return nil
}

// ValidSubject reports whether s is a valid subject.
func ValidSubject(s string) bool {
	if len(s) == 0 || len(s) > MaxSubject || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' })
}

// ValidNotifyURL reports whether u can be a notification URL.
func ValidNotifyURL(u string) bool {
	if len(u) > MaxNotifyURL {
		return false
	}
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" && p.User == nil && p.Fragment == ""
}

// Yuan formats an amount in fen as yuan with two decimals: 12345 → "123.45".
func Yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}
