package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// The JSON bodies of the gateway API (docs/gateway.md). Times are RFC 3339
// in UTC; amounts are integer fen.

// CreateRequest is the body of POST /v1/orders.
type CreateRequest struct {
	Ref       string    `json:"ref"`
	AmountFen int64     `json:"amount_fen"`
	Subject   string    `json:"subject"`
	NotifyURL string    `json:"notify_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// OrderBody is the gateway's answer about one order: to create, query and
// close.
type OrderBody struct {
	Ref       string    `json:"ref"`
	Txn       string    `json:"txn"`
	State     string    `json:"state"`
	AmountFen int64     `json:"amount_fen"`
	QRContent string    `json:"qr_content,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	PaidAt    time.Time `json:"paid_at,omitzero"`
}

// NotifyBody is the body of a notification.
type NotifyBody struct {
	Merchant  string    `json:"merchant"`
	Ref       string    `json:"ref"`
	Txn       string    `json:"txn"`
	State     string    `json:"state"`
	AmountFen int64     `json:"amount_fen"`
	PaidAt    time.Time `json:"paid_at,omitzero"`
}

// ErrorBody is the body of a refusal (HTTP 4xx and 5xx).
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

// decode reads exactly one JSON object of v's type from b.
func decode(b []byte, v any) error {
	if len(b) > MaxBody {
		return fmt.Errorf("%w: body of %d bytes (at most %d)", ErrMalformed, len(b), MaxBody)
	}
	if len(bytes.TrimSpace(b)) == 0 || bytes.TrimSpace(b)[0] != '{' {
		return fmt.Errorf("%w: body is not a JSON object", ErrMalformed)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// ParseNotification reads and checks a notification's body for merchant.
// It does not check the signature: Verify does, first.
func ParseNotification(body []byte, merchant string) (Notification, error) {
	var nb NotifyBody
	if err := decode(body, &nb); err != nil {
		return Notification{}, err
	}
	bad := func(format string, a ...any) (Notification, error) {
		return Notification{}, fmt.Errorf("%w: notification: "+format, append([]any{ErrMalformed}, a...)...)
	}
	switch {
	case nb.Merchant != merchant:
		return bad("for merchant %q, not %q", nb.Merchant, merchant)
	case !ValidRef(nb.Ref):
		return bad("ref %q", nb.Ref)
	case !ValidTxn(nb.Txn):
		return bad("txn %q", nb.Txn)
	case nb.AmountFen <= 0 || nb.AmountFen > MaxAmountFen:
		return bad("amount %d fen", nb.AmountFen)
	}
	switch nb.State {
	case StatePaid:
		if nb.PaidAt.IsZero() || nb.PaidAt.Year() < 2000 || nb.PaidAt.Year() > 9999 {
			return bad("paid without a valid paid_at")
		}
	case StateClosed:
		if !nb.PaidAt.IsZero() {
			return bad("closed with paid_at")
		}
	default:
		return bad("state %q", nb.State)
	}
	return Notification{Ref: nb.Ref, ProviderTxn: nb.Txn, State: nb.State, AmountFen: nb.AmountFen, PaidAt: nb.PaidAt.UTC()}, nil
}

// status checks an OrderBody and turns it into a Status.
func (ob OrderBody) status(ref string) (Status, error) {
	bad := func(format string, a ...any) (Status, error) {
		return Status{}, fmt.Errorf("%w: order: "+format, append([]any{ErrMalformed}, a...)...)
	}
	switch {
	case ob.Ref != ref:
		return bad("answer about ref %q, asked about %q", ob.Ref, ref)
	case !ValidTxn(ob.Txn):
		return bad("txn %q", ob.Txn)
	case ob.AmountFen <= 0 || ob.AmountFen > MaxAmountFen:
		return bad("amount %d fen", ob.AmountFen)
	}
	switch ob.State {
	case StatePaid:
		if ob.PaidAt.IsZero() {
			return bad("paid without paid_at")
		}
	case StatePending, StateClosed:
		if !ob.PaidAt.IsZero() {
			return bad("%s with paid_at", ob.State)
		}
	default:
		return bad("state %q", ob.State)
	}
	return Status{State: ob.State, ProviderTxn: ob.Txn, AmountFen: ob.AmountFen, PaidAt: ob.PaidAt.UTC()}, nil
}
