package printersim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	firmwaresim "onecard/firmware-sim"
	"sync"
	"time"

	"onecard/devices/escpos"
)

// Default print width: 80 mm paper at 203 dpi, 48 columns of Font A.
const DefaultDots = 576

// Options configure a Sim. The zero value is an 80 mm printer that does
// not pace the line and keeps its receipts in memory only.
type Options struct {
	// Baud paces the line both ways at this rate, 10 bits a byte (8N1); 0
	// takes and sends bytes at once.
	Baud int
	// Dir, if set, receives receipt-NNNN.txt and receipt-NNNN.png at each
	// cut. It is created if missing.
	Dir string
	// Dots is the print width: 576 for 80 mm paper (the default), 384 for
	// 58 mm. Text has Dots/12 columns.
	Dots int
	// Log receives receipts and faults at info, status queries and unknown
	// commands at debug; nil discards.
	Log *slog.Logger
}

// Paper is the state of the paper roll.
type Paper int

// The paper states. A roll near its end still prints.
const (
	PaperOK Paper = iota
	PaperNearEnd
	PaperOut
)

func (p Paper) String() string {
	switch p {
	case PaperOK:
		return "ok"
	case PaperNearEnd:
		return "near-end"
	case PaperOut:
		return "out"
	}
	return fmt.Sprintf("paper(%d)", int(p))
}

// Sim is a simulated ESC/POS printer. Its methods are safe for concurrent
// use; Serve one link at a time.
type Sim struct {
	opt Options
	log *slog.Logger

	mu      sync.Mutex
	wake    *sync.Cond // the print queue grew, the printer came online, or Serve ended
	paper   Paper
	cover   bool
	mute    bool
	garbage []byte

	queue    []byte // received, not yet taken by the command interpreter
	stopped  bool   // Serve is ending: the interpreter stops
	answered int

	receipts []Receipt
	next     int           // number of the next receipt, 0 before the directory was read
	printed  chan struct{} // closed (and replaced) at each receipt
}

// New returns a printer, online, with paper and the cover closed.
func New(o Options) *Sim {
	if o.Dots <= 0 {
		o.Dots = DefaultDots
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{opt: o, log: o.Log, printed: make(chan struct{})}
	s.wake = sync.NewCond(&s.mu)
	return s
}

// SetPaper loads, nearly uses up or runs out of paper. Out of paper, the
// printer goes offline and stops printing; with paper again it prints what
// it was sent meanwhile.
func (s *Sim) SetPaper(p Paper) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paper = p
	s.log.Info("printersim: paper", "state", p)
	s.wake.Broadcast()
}

// SetCover opens or closes the cover. Open, the printer is offline.
func (s *Sim) SetCover(open bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cover = open
	s.log.Info("printersim: cover", "open", open)
	s.wake.Broadcast()
}

// SetMute stops or resumes answering status queries. Printing goes on.
func (s *Sim) SetMute(mute bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mute = mute
	s.log.Info("printersim: status answers", "muted", mute)
}

// InjectGarbage writes b before the next status answer.
func (s *Sim) InjectGarbage(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.garbage = append(s.garbage, b...)
}

// State is a snapshot of the printer.
type State struct {
	Paper     Paper
	CoverOpen bool
	Muted     bool
	Online    bool
	Waiting   int // bytes received and not yet printed
	Answered  int // status queries answered
	Receipts  int // receipts cut
}

// State returns the printer's state.
func (s *Sim) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return State{
		Paper:     s.paper,
		CoverOpen: s.cover,
		Muted:     s.mute,
		Online:    s.online(),
		Waiting:   len(s.queue),
		Answered:  s.answered,
		Receipts:  len(s.receipts),
	}
}

// online: the printer prints. s.mu must be held.
func (s *Sim) online() bool { return !s.cover && s.paper != PaperOut }

// Receipts returns the receipts cut so far.
func (s *Sim) Receipts() []Receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Receipt(nil), s.receipts...)
}

// WaitReceipts waits until at least n receipts have been cut, and returns
// them all.
func (s *Sim) WaitReceipts(ctx context.Context, n int) ([]Receipt, error) {
	for {
		s.mu.Lock()
		got, printed := len(s.receipts), s.printed
		s.mu.Unlock()
		if got >= n {
			return s.Receipts(), nil
		}
		select {
		case <-ctx.Done():
			return s.Receipts(), fmt.Errorf("printersim: %d receipts of %d: %w", got, n, ctx.Err())
		case <-printed:
		}
	}
}

// Status bytes: bit 1 and bit 4 always set (Epson's real-time status).
const fixedBits = 0x12

// answer returns the status byte answering DLE EOT n; ok is false for a
// query a printer does not answer. s.mu must be held.
func (s *Sim) answer(n byte) (b byte, ok bool) {
	b = fixedBits
	switch n {
	case 1:
		if !s.online() {
			b |= 0x08
		}
	case 2:
		if s.cover {
			b |= 0x04
		}
		if s.paper == PaperOut {
			b |= 0x20 // printing stopped at the paper end
		}
	case 3:
		// No cutter or head errors are simulated.
	case 4:
		switch s.paper {
		case PaperNearEnd:
			b |= 0x0C
		case PaperOut:
			b |= 0x0C | 0x60
		}
	default:
		return 0, false
	}
	return b, true
}

// Serve runs the printer on rw until ctx is done (it then returns ctx's
// error) or rw fails. When ctx ends, Serve sets a past deadline on rw if
// rw has SetDeadline or SetReadDeadline, to stop its reader and return at
// once; otherwise a read in progress holds a goroutine until rw is closed.
// A receipt not yet cut when Serve returns is lost, as a printer switched
// off loses it.
func (s *Sim) Serve(ctx context.Context, rw io.ReadWriter) error {
	if err := s.openDir(); err != nil {
		return err
	}
	s.mu.Lock()
	s.queue, s.stopped = nil, false
	s.mu.Unlock()

	printerDone := make(chan struct{})
	go func() {
		defer close(printerDone)
		s.interpret()
	}()
	err := firmwaresim.ServeLine(ctx, rw, s.receive)
	s.mu.Lock()
	s.stopped = true
	s.wake.Broadcast()
	s.mu.Unlock()
	<-printerDone
	return err
}

// receive reads the line: each byte, when a UART would have delivered it,
// goes past the real-time command detector into the print queue.
func (s *Sim) receive(ctx context.Context, rw io.ReadWriter) error {
	buf := make([]byte, 256)
	rt := &realTime{}
	var free time.Time // when the line is free of bytes already taken
	chunk := 1 << 30
	if s.opt.Baud > 0 {
		chunk = max(1, s.opt.Baud/10/500) // about 2 ms of line time
	}
	for {
		n, err := rw.Read(buf)
		if now := time.Now(); free.Before(now) {
			free = now
		}
		for off := 0; off < n; {
			end := min(off+chunk, n)
			free = free.Add(s.wire(end - off))
			if err := firmwaresim.Sleep(ctx, time.Until(free)); err != nil {
				return err
			}
			if err := s.arrive(ctx, rw, rt, buf[off:end]); err != nil {
				return err
			}
			off = end
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("printersim: read: %w", err)
		}
	}
}

// realTime finds DLE EOT n in the bytes as they arrive.
type realTime struct{ state int }

// arrive queues b for printing and answers the status queries in it, each
// once its bytes are in the queue, as a printer's receive buffer has them.
func (s *Sim) arrive(ctx context.Context, w io.Writer, rt *realTime, b []byte) error {
	from := 0
	for i, c := range b {
		switch {
		case rt.state == 2:
			rt.state = 0
			s.enqueue(b[from : i+1])
			from = i + 1
			if err := s.respond(ctx, w, c); err != nil {
				return err
			}
		case rt.state == 1 && c == 0x04:
			rt.state = 2
		case c == 0x10:
			rt.state = 1
		default:
			rt.state = 0
		}
	}
	s.enqueue(b[from:])
	return nil
}

func (s *Sim) enqueue(b []byte) {
	if len(b) == 0 {
		return
	}
	s.mu.Lock()
	s.queue = append(s.queue, b...)
	s.wake.Broadcast()
	s.mu.Unlock()
}

// respond answers DLE EOT n.
func (s *Sim) respond(ctx context.Context, w io.Writer, n byte) error {
	s.mu.Lock()
	b, ok := s.answer(n)
	mute := s.mute
	var out []byte
	if ok && !mute {
		out = append(s.garbage, b)
		s.garbage = nil
		s.answered++
	}
	s.mu.Unlock()
	switch {
	case !ok:
		s.log.Debug("printersim: status query not answered", "n", n)
		return nil
	case mute:
		s.log.Debug("printersim: status query, muted", "n", n)
		return nil
	case len(out) > 1:
		s.log.Info("printersim: fault: garbage before a status answer", "bytes", fmt.Sprintf("% X", out[:len(out)-1]))
	}
	s.log.Debug("printersim: status", "n", n, "answer", fmt.Sprintf("%02X", b))
	if err := firmwaresim.Pace(ctx, w, out, s.opt.Baud); err != nil {
		return fmt.Errorf("printersim: write: %w", err)
	}
	return nil
}

// wire is how long n bytes take on the line.
func (s *Sim) wire(n int) time.Duration {
	if s.opt.Baud <= 0 {
		return 0
	}
	return time.Duration(n) * 10 * time.Second / time.Duration(s.opt.Baud)
}

// errStopped ends the command interpreter when Serve returns.
var errStopped = errors.New("stopped")

// queue is the command interpreter's view of the print queue: it blocks
// while the queue is empty or the printer offline.
type queue struct{ s *Sim }

func (q queue) ReadByte() (byte, error) {
	s := q.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.stopped:
			return 0, errStopped
		case len(s.queue) > 0 && s.online():
			c := s.queue[0]
			s.queue = s.queue[1:]
			return c, nil
		}
		s.wake.Wait()
	}
}

// interpret prints what the queue holds, a receipt at each cut, until
// Serve ends.
func (s *Sim) interpret() {
	d := escpos.NewDecoder(queue{s})
	var blocks []escpos.Block
	for {
		b, err := d.Next()
		if err != nil {
			if len(blocks) > 0 {
				s.log.Info("printersim: receipt not cut when the link ended: lost", "blocks", len(blocks))
			}
			return
		}
		switch b := b.(type) {
		case escpos.Query:
			// Answered on arrival.
		case escpos.Unknown:
			s.log.Debug("printersim: command ignored", "bytes", fmt.Sprintf("% X", b.Bytes))
		case escpos.Cut:
			s.cut(append(blocks, b))
			blocks = nil
		default:
			blocks = append(blocks, b)
		}
	}
}
