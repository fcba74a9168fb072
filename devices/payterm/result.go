package payterm

import (
	"fmt"
	"time"
)

// State is what the driver knows of a sale.
type State int

// The states of a sale. Only Approved means money was taken (and Voided
// that it was given back); Unknown means the driver could not learn it.
const (
	// Unknown: the outcome could not be learned. Resolve with Query.
	Unknown State = iota
	// Approved: the money was taken.
	Approved
	// Declined: no money was taken (declined, cancelled, timed out at the
	// terminal); Reason says why.
	Declined
	// Voided: approved, then voided by Cancel: the money was given back.
	Voided
	// InProgress: the customer is still at the terminal.
	InProgress
	// NotFound: the terminal has no sale with this reference: nothing was
	// charged under it.
	NotFound
)

func (s State) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Approved:
		return "approved"
	case Declined:
		return "declined"
	case Voided:
		return "voided"
	case InProgress:
		return "in progress"
	case NotFound:
		return "not found"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Result is a sale as the terminal reports it. Fields that do not apply to
// its State are zero.
type Result struct {
	Ref   string
	State State
	// Amount in fen, as the terminal reports it (zero for NotFound and
	// Unknown).
	Amount int64

	// Approved and Voided.
	Auth   string // authorisation code
	Scheme Scheme
	Last4  string // last 4 digits of the card number
	Trace  uint32 // trace number of the sale
	Batch  uint32
	// Time is when the terminal approved or declined the sale.
	Time time.Time

	// Voided: the void's trace number and time.
	VoidTrace uint32
	VoidTime  time.Time

	// Declined: reason code (e.g. "51") and the terminal's text.
	Reason     string
	ReasonText string

	// InProgress: how far the sale has got.
	Phase Phase
}

// Reason codes a terminal sends with DECLINED (docs/payterm.md). Numeric
// codes are the issuers' (ISO 8583 / CUPS); letters are the terminal's own.
const (
	ReasonDoNotHonour   = "05"
	ReasonInsufficient  = "51"
	ReasonExpired       = "54"
	ReasonWrongPIN      = "55"
	ReasonIssuerDown    = "91"
	ReasonCustomerAbort = "C0" // cancelled by the customer at the terminal
	ReasonHostCancel    = "C1" // cancelled by the host (CANCEL) before a card
	ReasonNoCard        = "T0" // no card presented in time
	ReasonNoAcquirer    = "T1" // no answer from the acquirer in time; reversed
	ReasonPowerLost     = "P0" // interrupted by power loss before authorising
	ReasonReversed      = "R0" // interrupted while authorising; reversed
)

var reasonTexts = map[string]string{
	ReasonDoNotHonour:   "do not honour",
	ReasonInsufficient:  "insufficient funds",
	ReasonExpired:       "expired card",
	ReasonWrongPIN:      "wrong PIN",
	ReasonIssuerDown:    "issuer unavailable",
	ReasonCustomerAbort: "cancelled by the customer",
	ReasonHostCancel:    "cancelled by the host",
	ReasonNoCard:        "no card presented in time",
	ReasonNoAcquirer:    "no answer from the acquirer; reversed",
	ReasonPowerLost:     "interrupted by a power loss; nothing charged",
	ReasonReversed:      "interrupted while authorising; reversed",
}

// ReasonText describes the reason codes above in English ("" for others:
// the terminal's own text then says what).
func ReasonText(code string) string { return reasonTexts[code] }

// resultOf turns an answer about a sale into a Result; ok is false for a
// message that is not about a sale.
func resultOf(m Message) (r Result, ok bool) {
	switch m := m.(type) {
	case ApprovedMsg:
		return approvedResult(Approved, m), true
	case VoidedMsg:
		r := approvedResult(Voided, m.ApprovedMsg)
		r.VoidTrace, r.VoidTime = m.VoidTrace, m.VoidTime
		return r, true
	case DeclinedMsg:
		return Result{Ref: m.Ref, State: Declined, Amount: m.Amount, Time: m.Time, Reason: m.Reason, ReasonText: m.Text}, true
	case InProgressMsg:
		return Result{Ref: m.Ref, State: InProgress, Amount: m.Amount, Phase: m.Phase}, true
	case NotFoundMsg:
		return Result{Ref: m.Ref, State: NotFound}, true
	}
	return Result{}, false
}

func approvedResult(s State, m ApprovedMsg) Result {
	return Result{
		Ref: m.Ref, State: s, Amount: m.Amount,
		Auth: m.Auth, Scheme: m.Scheme, Last4: m.Last4,
		Trace: m.Trace, Batch: m.Batch, Time: m.Time,
	}
}

// final reports whether m is a sale's outcome: approved, declined or
// voided. Outcomes are matched by reference as well as by SEQ.
func final(m Message) (ref string, ok bool) {
	switch m := m.(type) {
	case ApprovedMsg:
		return m.Ref, true
	case DeclinedMsg:
		return m.Ref, true
	case VoidedMsg:
		return m.Ref, true
	}
	return "", false
}
