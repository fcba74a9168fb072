package paytermsim

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"onecard/devices/payterm"
)

// Defaults for Options and the onecard-sim flags.
const (
	// DefaultDelay is the customer delay onecard-sim starts with: the time
	// between the SALE and the card on the reader.
	DefaultDelay = 200 * time.Millisecond
	// DefaultReboot is how long a power loss keeps the terminal silent.
	DefaultReboot = 3 * time.Second
	// DefaultJournalSize is how many sales the journal keeps.
	DefaultJournalSize = 500
	// DefaultVersion is the firmware version STATUS reports.
	DefaultVersion = "onecard-sim payterm 1"
)

// Options configure a Sim. The zero value is a fast terminal: no pacing,
// no customer delay, a journal in memory only.
type Options struct {
	// Baud paces output at this rate, 10 bits a byte (8N1), and acts on a
	// frame only once it could have arrived at it; 0 sends at once.
	Baud int
	// Delay is the customer delay: how long after a SALE the card is
	// presented (SetDelay changes it).
	Delay time.Duration
	// Reboot is how long a power loss keeps the terminal silent; zero
	// means DefaultReboot.
	Reboot time.Duration
	// JournalFile keeps the journal in this file across restarts of the
	// simulator; "" keeps it in memory.
	JournalFile string
	// JournalSize is how many sales the journal keeps; zero means
	// DefaultJournalSize.
	JournalSize int
	// AckTimeout is how long the terminal waits for the host's ACK of a
	// response before sending it again, Retries times (zero: 500 ms and
	// 2; negative Retries: never again).
	AckTimeout time.Duration
	Retries    int
	// Version is what STATUS reports; "" means DefaultVersion.
	Version string
	// Log receives frames at debug level and sales and faults at info;
	// nil discards.
	Log *slog.Logger
}

// Mode is how the terminal treats the sales to come.
type Mode int

// The modes. Each stays until another is set, except PowerLoss, which
// applies to one sale and then returns to Approve.
const (
	// Approve: the customer taps a card after the delay; approved.
	Approve Mode = iota
	// Decline: the customer taps a card; the issuer declines it.
	Decline
	// Timeout: the customer never taps: the sale stays in progress (QUERY
	// says so) until another mode is set, when the customer taps, or a
	// CANCEL stops it.
	Timeout
	// PowerLoss: the sale is approved and recorded in the journal, then
	// the power goes: nothing is sent, and the terminal stays silent for
	// the reboot time, ignoring every frame; then it answers queries from
	// its journal.
	PowerLoss
	// Garbage: sales are approved, but the transmit line is broken: every
	// frame the terminal sends (ACKs included) goes out as random bytes.
	Garbage
)

var modeNames = [...]string{"approve", "decline", "timeout", "powerloss", "garbage"}

func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Sim is a simulated payment terminal. Its methods are safe for concurrent
// use; Serve one link at a time.
type Sim struct {
	opt       Options
	log       *slog.Logger
	customers sync.WaitGroup // the sessions' goroutines

	mu       sync.Mutex
	mode     Mode
	reason   string
	text     string
	delay    time.Duration
	reboot   time.Duration // of the next power loss
	drop     int           // requests still to ignore
	j        *journal
	sale     *session // the sale in progress, nil if none
	offUntil time.Time
	changed  chan struct{} // closed (and replaced) when the mode changes
	outbox   [][]byte      // outcome frames for the link to send
	kick     chan struct{} // tells Serve about the outbox or a power loss
}

// New returns a terminal in Approve mode, with the journal read from
// Options.JournalFile if it exists.
func New(o Options) (*Sim, error) {
	if o.Reboot <= 0 {
		o.Reboot = DefaultReboot
	}
	if o.JournalSize <= 0 {
		o.JournalSize = DefaultJournalSize
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 500 * time.Millisecond
	}
	switch {
	case o.Retries == 0:
		o.Retries = 2
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Delay < 0 {
		return nil, errors.New("paytermsim: negative delay")
	}
	j, err := loadJournal(o.JournalFile, o.JournalSize)
	if err != nil {
		return nil, err
	}
	return &Sim{
		opt:     o,
		log:     o.Log,
		delay:   o.Delay,
		reboot:  o.Reboot,
		j:       j,
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
	}, nil
}

// setMode sets the mode and wakes a customer who was told to wait.
// s.mu must be held.
func (s *Sim) setMode(m Mode) {
	s.mode = m
	close(s.changed)
	s.changed = make(chan struct{})
	s.log.Info("paytermsim: mode", "mode", m)
}

// Approve makes the next sales approved (the default).
func (s *Sim) Approve() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setMode(Approve)
}

// Decline makes the next sales declined with reason (2 characters 0–9
// A–Z, e.g. "51") and text; text "" takes payterm.ReasonText's, and
// reason "" means "05" (do not honour).
func (s *Sim) Decline(reason, text string) error {
	if reason == "" {
		reason = payterm.ReasonDoNotHonour
	}
	if text == "" {
		text = payterm.ReasonText(reason)
	}
	// The message's own checks, on a message that is valid but for these.
	if _, err := payterm.Marshal(1, payterm.DeclinedMsg{Ref: "x", Amount: 1, Time: time.Unix(1, 0), Reason: reason, Text: text}); err != nil {
		return fmt.Errorf("paytermsim: decline: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reason, s.text = reason, text
	s.setMode(Decline)
	return nil
}

// Timeout makes the customers of the next sales never tap: the sales stay
// in progress until another mode is set or a CANCEL stops them.
func (s *Sim) Timeout() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setMode(Timeout)
}

// PowerLoss makes the next sale lose the power just after its approval is
// recorded: the terminal sends nothing and stays silent for reboot (0:
// Options.Reboot), then answers from its journal. Later sales are
// approved.
func (s *Sim) PowerLoss(reboot time.Duration) {
	if reboot <= 0 {
		reboot = s.opt.Reboot
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reboot = reboot
	s.setMode(PowerLoss)
}

// Garbage breaks the transmit line: everything the terminal sends goes out
// as random bytes of the same length, until another mode is set. Sales go
// on, and are approved.
func (s *Sim) Garbage() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setMode(Garbage)
}

// SetDelay sets the customer delay of the next sales.
func (s *Sim) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = max(d, 0)
}

// DropRequests makes the terminal ignore the next n request frames
// entirely, as if they never arrived: no ACK, no answer, nothing recorded.
func (s *Sim) DropRequests(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = max(n, 0)
}

// Status is a snapshot of the simulator.
type Status struct {
	Mode   Mode
	Reason string // of Decline
	Delay  time.Duration
	// Ref is the sale in progress, "" if none.
	Ref string
	// Off: the power is off (rebooting after a power loss).
	Off bool
	// Journal is how many sales the journal holds; Charges how many
	// approvals were ever made.
	Journal, Charges int
	Batch            uint32
}

// Status returns the simulator's state.
func (s *Sim) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		Mode: s.mode, Reason: s.reason, Delay: s.delay,
		Off:     time.Now().Before(s.offUntil),
		Journal: len(s.j.Entries), Charges: s.j.Charges, Batch: s.j.Batch,
	}
	if s.sale != nil {
		st.Ref = s.sale.e.Ref
	}
	return st
}

// Journal returns a copy of the journal, oldest first.
func (s *Sim) Journal() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, len(s.j.Entries))
	for i, e := range s.j.Entries {
		out[i] = *e
	}
	return out
}

// Entry returns the journal's entry for ref.
func (s *Sim) Entry(ref string) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.j.find(ref); e != nil {
		return *e, true
	}
	return Entry{}, false
}

// post queues a frame for the link and wakes it. s.mu must be held.
func (s *Sim) post(frame []byte) {
	s.outbox = append(s.outbox, frame)
	s.wake()
}

func (s *Sim) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// off reports whether the power is off. s.mu must be held.
func (s *Sim) off() bool { return time.Now().Before(s.offUntil) }

// save writes the journal, logging a failure: the simulator goes on, as a
// terminal with a worn flash would not, but a test sees the log.
func (s *Sim) save() {
	if err := s.j.save(); err != nil {
		s.log.Error("paytermsim: journal not saved", "err", err)
	}
}
