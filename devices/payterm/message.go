package payterm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Field limits (docs/payterm.md, "Fields").
const (
	// MaxRef is the longest reference: 1–32 visible ASCII characters.
	MaxRef = 32
	// MaxAmount is the largest amount in fen (12 digits, as ISO 8583).
	MaxAmount = 999_999_999_999
	// MaxText is the longest reason or error text, in bytes of UTF-8.
	MaxText = 64
	// MaxVersion is the longest firmware version string.
	MaxVersion = 32
	// MaxTrace is the largest trace or batch number (6 digits).
	MaxTrace = 999_999
	// CNY is the ISO 4217 numeric code of the renminbi, the only currency.
	CNY = 156
	// ProtocolVersion is the version of docs/payterm.md this package speaks.
	ProtocolVersion = 1
)

// Scheme is the card scheme an approval reports.
type Scheme byte

// The card schemes.
const (
	SchemeOther      Scheme = 0x00
	SchemeUnionPay   Scheme = 0x01
	SchemeVisa       Scheme = 0x02
	SchemeMastercard Scheme = 0x03
	SchemeJCB        Scheme = 0x04
	SchemeAmex       Scheme = 0x05
	SchemeDiscover   Scheme = 0x06 // Discover and Diners Club
)

var schemeNames = [...]string{"other", "UnionPay", "Visa", "Mastercard", "JCB", "American Express", "Discover"}

// String names the scheme, e.g. "UnionPay".
func (s Scheme) String() string {
	if int(s) < len(schemeNames) {
		return schemeNames[s]
	}
	return fmt.Sprintf("scheme(0x%02X)", byte(s))
}

// Phase is how far a sale in progress has got.
type Phase byte

// The phases of a sale in progress. Only PhaseWaitCard can be cancelled.
const (
	PhaseWaitCard    Phase = 0x01 // waiting for the card: CANCEL stops the sale
	PhaseCard        Phase = 0x02 // card presented: reading it, PIN entry
	PhaseAuthorising Phase = 0x03 // waiting for the acquirer
)

func (p Phase) String() string {
	switch p {
	case PhaseWaitCard:
		return "waiting for the card"
	case PhaseCard:
		return "card presented"
	case PhaseAuthorising:
		return "authorising"
	}
	return fmt.Sprintf("phase(0x%02X)", byte(p))
}

// Code is an ERROR message's code.
type Code byte

// The error codes. A terminal may send others (1–255); their text says what.
const (
	CodeMalformed      Code = 0x01 // the body does not parse
	CodeUnknownType    Code = 0x02 // a message type the terminal does not know
	CodeBadRef         Code = 0x03 // reference empty, too long or not visible ASCII
	CodeBadAmount      Code = 0x04 // amount 0 or over MaxAmount
	CodeCurrency       Code = 0x05 // currency other than CNY
	CodeRefConflict    Code = 0x06 // reference already used for another amount
	CodeNotCancellable Code = 0x07 // void refused, or batch already settled
	CodeOutOfService   Code = 0x08 // the terminal cannot take sales now
)

// TermState is what a terminal is doing, in its STATUS_REPLY.
type TermState byte

// The terminal states.
const (
	Idle         TermState = 0x00
	Selling      TermState = 0x01 // a sale is in progress
	OutOfService TermState = 0x02 // no network, no key, maintenance
)

func (s TermState) String() string {
	switch s {
	case Idle:
		return "idle"
	case Selling:
		return "selling"
	case OutOfService:
		return "out of service"
	}
	return fmt.Sprintf("state(0x%02X)", byte(s))
}

// Message parsing errors. Every Unmarshal error wraps ErrMalformed; those
// about one field also wrap ErrBadRef, ErrBadAmount or ErrCurrency.
var (
	ErrMalformed   = errors.New("payterm: malformed message")
	ErrBadRef      = errors.New("reference must be 1–32 visible ASCII characters")
	ErrBadAmount   = errors.New("amount must be 1 to 999999999999 fen")
	ErrCurrency    = errors.New("currency must be CNY (156)")
	errUnknownType = errors.New("unknown message type")
)

// Message is a parsed message; each type has its own struct, *Msg.
type Message interface {
	// Type is the frame type that carries the message.
	Type() Type
	appendBody(b []byte) ([]byte, error)
}

// SaleMsg asks the terminal to take Amount fen (CNY) from a card, under
// the host's reference Ref.
type SaleMsg struct {
	Ref    string
	Amount int64
}

// QueryMsg asks for the state of the sale with reference Ref.
type QueryMsg struct{ Ref string }

// CancelMsg asks the terminal to stop the sale with reference Ref, or to
// void it if it was approved.
type CancelMsg struct{ Ref string }

// StatusMsg asks what the terminal is doing.
type StatusMsg struct{}

// ApprovedMsg reports an approved sale.
type ApprovedMsg struct {
	Ref    string
	Amount int64
	Auth   string // the issuer's authorisation code, 6 characters 0–9 A–Z
	Scheme Scheme
	Last4  string // last 4 digits of the card number
	Trace  uint32 // the terminal's trace number (凭证号), 1–999999
	Batch  uint32 // the terminal's batch number (批次号), 1–999999
	Time   time.Time
}

// DeclinedMsg reports a sale that took no money: declined by the issuer,
// cancelled, or timed out at the terminal.
type DeclinedMsg struct {
	Ref    string
	Amount int64
	Time   time.Time
	Reason string // 2 characters 0–9 A–Z, e.g. "51"
	Text   string // UTF-8, at most MaxText bytes
}

// VoidedMsg reports an approved sale that was voided: the approval as it
// was, then the void's trace number and time.
type VoidedMsg struct {
	ApprovedMsg
	VoidTrace uint32
	VoidTime  time.Time
}

// InProgressMsg reports a sale not finished yet.
type InProgressMsg struct {
	Ref    string
	Amount int64
	Phase  Phase
}

// NotFoundMsg: the terminal's journal has no sale with reference Ref.
type NotFoundMsg struct{ Ref string }

// BusyMsg: the SALE with reference Ref was refused because another sale
// is in progress. Nothing was recorded for Ref.
type BusyMsg struct{ Ref string }

// ErrorMsg: the terminal refused the request.
type ErrorMsg struct {
	Code Code
	Text string
}

// StatusReplyMsg answers STATUS.
type StatusReplyMsg struct {
	State       TermState
	Ref         string // the sale in progress, "" if none
	Batch       uint32
	JournalUsed uint16 // entries in the journal
	JournalSize uint16 // entries it keeps
	Protocol    byte   // ProtocolVersion
	Version     string // firmware version, visible ASCII, at most 32
}

// AckMsg acknowledges the frame with the same SEQ.
type AckMsg struct{}

// NakMsg asks for the last unacknowledged frame again.
type NakMsg struct{}

// Type implements Message.
func (SaleMsg) Type() Type { return TypeSale }

// Type implements Message.
func (QueryMsg) Type() Type { return TypeQuery }

// Type implements Message.
func (CancelMsg) Type() Type { return TypeCancel }

// Type implements Message.
func (StatusMsg) Type() Type { return TypeStatus }

// Type implements Message.
func (ApprovedMsg) Type() Type { return TypeApproved }

// Type implements Message.
func (DeclinedMsg) Type() Type { return TypeDeclined }

// Type implements Message.
func (VoidedMsg) Type() Type { return TypeVoided }

// Type implements Message.
func (InProgressMsg) Type() Type { return TypeInProgress }

// Type implements Message.
func (NotFoundMsg) Type() Type { return TypeNotFound }

// Type implements Message.
func (BusyMsg) Type() Type { return TypeBusy }

// Type implements Message.
func (ErrorMsg) Type() Type { return TypeError }

// Type implements Message.
func (StatusReplyMsg) Type() Type { return TypeStatusReply }

// Type implements Message.
func (AckMsg) Type() Type { return TypeACK }

// Type implements Message.
func (NakMsg) Type() Type { return TypeNAK }

// Marshal encodes m in a frame with sequence number seq, after checking
// every field as Unmarshal would.
func Marshal(seq byte, m Message) ([]byte, error) {
	body, err := m.appendBody(nil)
	if err != nil {
		return nil, fmt.Errorf("payterm: %v: %w", m.Type(), err)
	}
	return Encode(Frame{Type: m.Type(), Seq: seq, Body: body})
}

// Unmarshal parses a frame's body strictly: every field in range, no byte
// left over. Its errors wrap ErrMalformed.
func Unmarshal(f Frame) (Message, error) {
	r := &reader{b: f.Body}
	var m Message
	switch f.Type {
	case TypeACK:
		m = AckMsg{}
	case TypeNAK:
		m = NakMsg{}
	case TypeSale:
		s := SaleMsg{Ref: r.ref()}
		s.Amount = r.amount()
		m = s
	case TypeQuery:
		m = QueryMsg{Ref: r.ref()}
	case TypeCancel:
		m = CancelMsg{Ref: r.ref()}
	case TypeStatus:
		m = StatusMsg{}
	case TypeApproved:
		m = r.approved()
	case TypeDeclined:
		d := DeclinedMsg{Ref: r.ref()}
		d.Amount = r.amount()
		d.Time = r.time()
		d.Reason = r.reason()
		d.Text = r.text()
		m = d
	case TypeVoided:
		v := VoidedMsg{ApprovedMsg: r.approved()}
		v.VoidTrace = r.trace()
		v.VoidTime = r.time()
		m = v
	case TypeInProgress:
		p := InProgressMsg{Ref: r.ref()}
		p.Amount = r.amount()
		p.Phase = r.phase()
		m = p
	case TypeNotFound:
		m = NotFoundMsg{Ref: r.ref()}
	case TypeBusy:
		m = BusyMsg{Ref: r.ref()}
	case TypeError:
		e := ErrorMsg{Code: Code(r.u8())}
		if e.Code == 0 {
			r.fail(errors.New("error code 0"))
		}
		e.Text = r.text()
		m = e
	case TypeStatusReply:
		s := StatusReplyMsg{State: TermState(r.u8())}
		if s.State > OutOfService {
			r.fail(fmt.Errorf("terminal state 0x%02X", byte(s.State)))
		}
		s.Ref = r.optRef()
		if (s.State == Selling) != (s.Ref != "") {
			r.fail(errors.New("a reference goes with state selling only"))
		}
		s.Batch = r.trace()
		s.JournalUsed = r.u16()
		s.JournalSize = r.u16()
		if s.JournalUsed > s.JournalSize {
			r.fail(errors.New("journal holds more than its size"))
		}
		s.Protocol = r.u8()
		if s.Protocol == 0 {
			r.fail(errors.New("protocol version 0"))
		}
		s.Version = r.version()
		m = s
	default:
		return nil, fmt.Errorf("%w: %v: %w", ErrMalformed, f.Type, errUnknownType)
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail(fmt.Errorf("%d bytes after the last field", len(r.b)))
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: %v: %w", ErrMalformed, f.Type, r.err)
	}
	return m, nil
}

// CheckRef reports whether ref is a valid reference (wrapping ErrBadRef).
func CheckRef(ref string) error {
	if len(ref) == 0 || len(ref) > MaxRef {
		return fmt.Errorf("%w: %d characters", ErrBadRef, len(ref))
	}
	for i := 0; i < len(ref); i++ {
		if c := ref[i]; c < 0x21 || c > 0x7E {
			return fmt.Errorf("%w: byte 0x%02X at %d", ErrBadRef, c, i)
		}
	}
	return nil
}

// CheckAmount reports whether fen is a valid amount (wrapping ErrBadAmount).
func CheckAmount(fen int64) error {
	if fen < 1 || fen > MaxAmount {
		return fmt.Errorf("%w: %d", ErrBadAmount, fen)
	}
	return nil
}

func checkText(s string) error {
	if len(s) > MaxText {
		return fmt.Errorf("text of %d bytes (at most %d)", len(s), MaxText)
	}
	if !utf8.ValidString(s) {
		return errors.New("text is not UTF-8")
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return fmt.Errorf("control character %U in text", c)
		}
	}
	return nil
}

func checkAlnum(what, s string, n int, digitsOnly bool) error {
	if len(s) != n {
		return fmt.Errorf("%s %q: want %d characters", what, s, n)
	}
	for i := 0; i < n; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || !digitsOnly && c >= 'A' && c <= 'Z') {
			return fmt.Errorf("%s %q: character %q not allowed", what, s, c)
		}
	}
	return nil
}

func checkTrace(what string, n uint32) error {
	if n < 1 || n > MaxTrace {
		return fmt.Errorf("%s %d out of 1–%d", what, n, MaxTrace)
	}
	return nil
}

// maxUnix is 9999-12-31T23:59:59Z: times stay exact and format sensibly.
const maxUnix = 253402300799

func checkTime(t time.Time) error {
	if s := t.Unix(); s < 1 || s > maxUnix {
		return fmt.Errorf("time %v out of 1970-01-01T00:00:01Z–9999-12-31T23:59:59Z", t)
	}
	return nil
}

func checkScheme(s Scheme) error {
	if s > SchemeDiscover {
		return fmt.Errorf("card scheme 0x%02X", byte(s))
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func checkVersion(s string) error {
	if len(s) > MaxVersion {
		return fmt.Errorf("version of %d bytes (at most %d)", len(s), MaxVersion)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7E {
			return fmt.Errorf("version: byte 0x%02X", c)
		}
	}
	return nil
}

// Writers. Each checks its fields, then appends the body.

func appendRef(b []byte, ref string) ([]byte, error) {
	if err := CheckRef(ref); err != nil {
		return nil, err
	}
	return append(append(b, byte(len(ref))), ref...), nil
}

func appendAmount(b []byte, fen int64) ([]byte, error) {
	if err := CheckAmount(fen); err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint64(b, uint64(fen))
	return binary.BigEndian.AppendUint16(b, CNY), nil
}

func appendText(b []byte, s string) ([]byte, error) {
	if err := checkText(s); err != nil {
		return nil, err
	}
	return append(append(b, byte(len(s))), s...), nil
}

func appendTime(b []byte, t time.Time) ([]byte, error) {
	if err := checkTime(t); err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(b, uint64(t.Unix())), nil
}

func refAmount(ref string, fen int64) ([]byte, error) {
	b, err := appendRef(nil, ref)
	if err != nil {
		return nil, err
	}
	return appendAmount(b, fen)
}

func (m SaleMsg) appendBody(b []byte) ([]byte, error) {
	body, err := refAmount(m.Ref, m.Amount)
	return append(b, body...), err
}

func (m QueryMsg) appendBody(b []byte) ([]byte, error)  { return appendRef(b, m.Ref) }
func (m CancelMsg) appendBody(b []byte) ([]byte, error) { return appendRef(b, m.Ref) }
func (StatusMsg) appendBody(b []byte) ([]byte, error)   { return b, nil }
func (AckMsg) appendBody(b []byte) ([]byte, error)      { return b, nil }
func (NakMsg) appendBody(b []byte) ([]byte, error)      { return b, nil }

func (m ApprovedMsg) appendBody(b []byte) ([]byte, error) {
	body, err := refAmount(m.Ref, m.Amount)
	if err != nil {
		return nil, err
	}
	if err := firstErr(
		checkAlnum("authorisation code", m.Auth, 6, false),
		checkScheme(m.Scheme),
		checkAlnum("last 4 digits", m.Last4, 4, true),
		checkTrace("trace", m.Trace),
		checkTrace("batch", m.Batch),
	); err != nil {
		return nil, err
	}
	body = append(body, m.Auth...)
	body = append(body, byte(m.Scheme))
	body = append(body, m.Last4...)
	body = binary.BigEndian.AppendUint32(body, m.Trace)
	body = binary.BigEndian.AppendUint32(body, m.Batch)
	if body, err = appendTime(body, m.Time); err != nil {
		return nil, err
	}
	return append(b, body...), nil
}

func (m DeclinedMsg) appendBody(b []byte) ([]byte, error) {
	body, err := refAmount(m.Ref, m.Amount)
	if err != nil {
		return nil, err
	}
	if body, err = appendTime(body, m.Time); err != nil {
		return nil, err
	}
	if err := checkAlnum("reason", m.Reason, 2, false); err != nil {
		return nil, err
	}
	body = append(body, m.Reason...)
	if body, err = appendText(body, m.Text); err != nil {
		return nil, err
	}
	return append(b, body...), nil
}

func (m VoidedMsg) appendBody(b []byte) ([]byte, error) {
	body, err := m.ApprovedMsg.appendBody(nil)
	if err != nil {
		return nil, err
	}
	if err := checkTrace("void trace", m.VoidTrace); err != nil {
		return nil, err
	}
	body = binary.BigEndian.AppendUint32(body, m.VoidTrace)
	if body, err = appendTime(body, m.VoidTime); err != nil {
		return nil, err
	}
	return append(b, body...), nil
}

func (m InProgressMsg) appendBody(b []byte) ([]byte, error) {
	body, err := refAmount(m.Ref, m.Amount)
	if err != nil {
		return nil, err
	}
	if m.Phase < PhaseWaitCard || m.Phase > PhaseAuthorising {
		return nil, fmt.Errorf("phase 0x%02X", byte(m.Phase))
	}
	return append(append(b, body...), byte(m.Phase)), nil
}

func (m NotFoundMsg) appendBody(b []byte) ([]byte, error) { return appendRef(b, m.Ref) }
func (m BusyMsg) appendBody(b []byte) ([]byte, error)     { return appendRef(b, m.Ref) }

func (m ErrorMsg) appendBody(b []byte) ([]byte, error) {
	if m.Code == 0 {
		return nil, errors.New("error code 0")
	}
	return appendText(append(b, byte(m.Code)), m.Text)
}

func (m StatusReplyMsg) appendBody(b []byte) ([]byte, error) {
	switch {
	case m.State > OutOfService:
		return nil, fmt.Errorf("terminal state 0x%02X", byte(m.State))
	case (m.State == Selling) != (m.Ref != ""):
		return nil, errors.New("a reference goes with state selling only")
	case m.JournalUsed > m.JournalSize:
		return nil, errors.New("journal holds more than its size")
	case m.Protocol == 0:
		return nil, errors.New("protocol version 0")
	}
	b = append(b, byte(m.State))
	if m.Ref == "" {
		b = append(b, 0)
	} else {
		var err error
		if b, err = appendRef(b, m.Ref); err != nil {
			return nil, err
		}
	}
	if err := checkTrace("batch", m.Batch); err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint32(b, m.Batch)
	b = binary.BigEndian.AppendUint16(b, m.JournalUsed)
	b = binary.BigEndian.AppendUint16(b, m.JournalSize)
	b = append(b, m.Protocol)
	if err := checkVersion(m.Version); err != nil {
		return nil, err
	}
	return append(append(b, byte(len(m.Version))), m.Version...), nil
}

// reader parses a body field by field; the first error sticks and later
// reads return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail(fmt.Errorf("body ends in the %s", what))
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) u8() byte {
	if b := r.take(1, "fields"); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.take(2, "fields"); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if b := r.take(4, what); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) ref() string {
	n := int(r.u8())
	s := string(r.take(n, "reference"))
	if r.err == nil {
		r.check(CheckRef(s))
	}
	return s
}

// optRef is a reference that may be empty (length 0).
func (r *reader) optRef() string {
	if r.err == nil && len(r.b) > 0 && r.b[0] == 0 {
		r.b = r.b[1:]
		return ""
	}
	return r.ref()
}

func (r *reader) amount() int64 {
	b := r.take(10, "amount")
	if b == nil {
		return 0
	}
	v := binary.BigEndian.Uint64(b)
	if v < 1 || v > MaxAmount {
		r.fail(fmt.Errorf("%w: %d", ErrBadAmount, v))
		return 0
	}
	if c := binary.BigEndian.Uint16(b[8:]); c != CNY {
		r.fail(fmt.Errorf("%w: %d", ErrCurrency, c))
		return 0
	}
	return int64(v)
}

func (r *reader) time() time.Time {
	b := r.take(8, "time")
	if b == nil {
		return time.Time{}
	}
	v := binary.BigEndian.Uint64(b)
	if v < 1 || v > maxUnix {
		r.fail(fmt.Errorf("time %d out of range", v))
		return time.Time{}
	}
	return time.Unix(int64(v), 0).UTC()
}

func (r *reader) trace() uint32 {
	v := r.u32("trace number")
	if r.err == nil {
		r.check(checkTrace("trace or batch", v))
	}
	return v
}

func (r *reader) alnum(what string, n int, digitsOnly bool) string {
	s := string(r.take(n, what))
	if r.err == nil {
		r.check(checkAlnum(what, s, n, digitsOnly))
	}
	return s
}

func (r *reader) reason() string { return r.alnum("reason", 2, false) }

func (r *reader) text() string {
	n := int(r.u8())
	s := string(r.take(n, "text"))
	if r.err == nil {
		r.check(checkText(s))
	}
	return s
}

func (r *reader) version() string {
	n := int(r.u8())
	s := string(r.take(n, "version"))
	if r.err == nil {
		r.check(checkVersion(s))
	}
	return s
}

func (r *reader) phase() Phase {
	p := Phase(r.u8())
	if r.err == nil && (p < PhaseWaitCard || p > PhaseAuthorising) {
		r.fail(fmt.Errorf("phase 0x%02X", byte(p)))
	}
	return p
}

func (r *reader) approved() ApprovedMsg {
	a := ApprovedMsg{Ref: r.ref()}
	a.Amount = r.amount()
	a.Auth = r.alnum("authorisation code", 6, false)
	a.Scheme = Scheme(r.u8())
	if r.err == nil {
		r.check(checkScheme(a.Scheme))
	}
	a.Last4 = r.alnum("last 4 digits", 4, true)
	a.Trace = r.trace()
	a.Batch = r.trace()
	a.Time = r.time()
	return a
}

func (r *reader) check(err error) {
	if err != nil {
		r.fail(err)
	}
}
