package lockersim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	firmwaresim "onecard/firmware-sim"
	"sync"
	"time"
)

// LocksPerBoard is how many locks a KR-CU16 board drives.
const LocksPerBoard = 16

// Most is the largest bank one bus holds: 16 boards (ADDR's high nibble).
const Most = 16 * LocksPerBoard

// DefaultDoors is the bank of the demo estate: three boards.
const DefaultDoors = 48

// Frame bytes (docs/locker.md).
const (
	stx       = 0x02
	etx       = 0x03
	cmdStatus = 0x30
	cmdUnlock = 0x31
	cmdReply  = 0x35
	reqLen    = 5
	replyLen  = 9
)

// Options configure a Sim. The zero value is a bank of 48 doors that does
// not pace the line and whose doors open at once.
type Options struct {
	// Doors is the bank's size, 1 to Most; 0 means DefaultDoors.
	Doors int
	// Baud paces the line both ways at this rate, 10 bits a byte (8N1); 0
	// takes and sends bytes at once.
	Baud int
	// PopDelay is how long after an unlock's answer a released door's
	// sensor says open (its spring pushing it out).
	PopDelay time.Duration
	// Log receives unlocks and faults at info, status queries and ignored
	// frames at debug; nil discards.
	Log *slog.Logger
	// OnUnlock, if set, is called with the door an unlock frame names as
	// soon as the frame has arrived (before the board answers): benchmarks
	// time "until the unlock is on the wire" with it.
	OnUnlock func(door int)
}

// Sim is a simulated locker bank. Its methods are safe for concurrent use;
// Serve one link at a time.
type Sim struct {
	opt Options
	log *slog.Logger

	mu      sync.Mutex
	doors   []door
	silent  []bool // per board
	garbage []byte
	corrupt bool
	queries int
	unlocks int
	ignored int
	unheard int
}

type door struct {
	open    bool
	stuck   bool
	popAt   time.Time // when a released door springs open; zero if not released
	unlocks int
}

// New returns a bank whose doors are all shut and latched and whose boards
// all answer. It panics if o.Doors is out of range.
func New(o Options) *Sim {
	if o.Doors == 0 {
		o.Doors = DefaultDoors
	}
	if o.Doors < 1 || o.Doors > Most {
		panic(fmt.Sprintf("lockersim: %d doors: a bus holds 1 to %d", o.Doors, Most))
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Sim{
		opt:    o,
		log:    o.Log,
		doors:  make([]door, o.Doors),
		silent: make([]bool, boards(o.Doors)),
	}
}

func boards(doors int) int { return (doors + LocksPerBoard - 1) / LocksPerBoard }

// Doors is the bank's size.
func (s *Sim) Doors() int { return len(s.doors) }

// Boards is how many boards the doors take.
func (s *Sim) Boards() int { return len(s.silent) }

// door returns door n (from 1). s.mu must be held.
func (s *Sim) door(n int) (*door, error) {
	if n < 1 || n > len(s.doors) {
		return nil, fmt.Errorf("lockersim: no door %d (doors 1 to %d)", n, len(s.doors))
	}
	d := &s.doors[n-1]
	d.update(time.Now())
	return d, nil
}

// update lets a released door spring open once its time has come.
func (d *door) update(now time.Time) {
	if !d.popAt.IsZero() && !now.Before(d.popAt) {
		d.open, d.popAt = true, time.Time{}
	}
}

// Close shuts door n, as someone pushing it to: its lock latches again. A
// released door still about to spring open is caught before it does.
func (s *Sim) Close(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.door(n)
	if err != nil {
		return err
	}
	d.open, d.popAt = false, time.Time{}
	s.log.Info("lockersim: door closed", "door", n)
	return nil
}

// Open opens door n by hand, as staff with the service key do: it opens
// even when stuck, and stays open until closed.
func (s *Sim) Open(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.door(n)
	if err != nil {
		return err
	}
	d.open, d.popAt = true, time.Time{}
	s.log.Info("lockersim: door opened by hand", "door", n)
	return nil
}

// Stick jams door n (stuck true) or frees it: a stuck door's lock takes the
// unlock but the door does not move. Freeing it does not open it: the next
// unlock does.
func (s *Sim) Stick(n int, stuck bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.door(n)
	if err != nil {
		return err
	}
	d.stuck = stuck
	s.log.Info("lockersim: door", "door", n, "stuck", stuck)
	return nil
}

// SetSilent takes board off the bus (silent true), as a board without
// power or with its bus wires cut: it neither answers nor acts. false puts
// it back. Board -1 is every board.
func (s *Sim) SetSilent(board int, silent bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if board == -1 {
		for i := range s.silent {
			s.silent[i] = silent
		}
	} else if board < 0 || board >= len(s.silent) {
		return fmt.Errorf("lockersim: no board %d (boards 0 to %d)", board, len(s.silent)-1)
	} else {
		s.silent[board] = silent
	}
	s.log.Info("lockersim: board answers", "board", board, "silent", silent)
	return nil
}

// InjectGarbage writes b before the next answer.
func (s *Sim) InjectGarbage(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.garbage = append(s.garbage, b...)
}

// Corrupt makes the next answer's SUM wrong.
func (s *Sim) Corrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt = true
}

// State is a snapshot of the bank.
type State struct {
	// Doors is door i+1 at element i.
	Doors []Door
	// Silent is board i at element i.
	Silent []bool
	// Queries and Unlocks count the requests answered (a silent board is
	// off the bus: it neither answers nor acts); Unheard counts the
	// requests that reached a silent board; Ignored counts frames with a
	// good SUM but a command no board knows or an address no board has.
	Queries, Unlocks, Unheard, Ignored int
}

// Door is one door's state.
type Door struct {
	Open    bool // its sensor says open
	Stuck   bool
	Unlocks int // unlocks its board took for it
}

// State returns the bank's state.
func (s *Sim) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	st := State{
		Doors:   make([]Door, len(s.doors)),
		Silent:  append([]bool(nil), s.silent...),
		Queries: s.queries,
		Unlocks: s.unlocks,
		Unheard: s.unheard,
		Ignored: s.ignored,
	}
	for i := range s.doors {
		d := &s.doors[i]
		d.update(now)
		st.Doors[i] = Door{Open: d.open, Stuck: d.stuck, Unlocks: d.unlocks}
	}
	return st
}

// Serve runs the bank on rw until ctx is done (it then returns ctx's
// error) or rw fails. When ctx ends, Serve sets a past deadline on rw if
// rw has SetDeadline or SetReadDeadline, to stop its reader and return at
// once; otherwise a read in progress holds a goroutine until rw is closed.
func (s *Sim) Serve(ctx context.Context, rw io.ReadWriter) error {
	return firmwaresim.ServeLine(ctx, rw, s.receive)
}

// receive reads the line: the bytes join the board's receive buffer when a
// UART would have delivered them, and each complete request is answered
// there and then.
func (s *Sim) receive(ctx context.Context, rw io.ReadWriter) error {
	buf := make([]byte, 256)
	var rx []byte
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
			free = free.Add(firmwaresim.WireTime(end-off, s.opt.Baud))
			if err := firmwaresim.Sleep(ctx, time.Until(free)); err != nil {
				return err
			}
			rx = append(rx, buf[off:end]...)
			var werr error
			if rx, werr = s.frames(ctx, rw, rx); werr != nil {
				return werr
			}
			off = end
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("lockersim: read: %w", err)
		}
	}
}

// frames handles the complete requests in rx and returns what is left: a
// partial request, from its STX.
func (s *Sim) frames(ctx context.Context, w io.Writer, rx []byte) ([]byte, error) {
	for {
		i := 0
		for i < len(rx) && rx[i] != stx {
			i++
		}
		rx = rx[i:]
		if len(rx) < reqLen {
			return rx, nil
		}
		f := rx[:reqLen]
		if f[3] != etx || f[4] != sum(f[:4]) {
			// Not a request from this STX: look again from the next byte.
			s.log.Debug("lockersim: bad frame skipped", "bytes", fmt.Sprintf("% X", f))
			rx = rx[1:]
			continue
		}
		if err := s.request(ctx, w, f[1], f[2]); err != nil {
			return nil, err
		}
		rx = rx[reqLen:]
	}
}

// request acts on one request and answers it.
func (s *Sim) request(ctx context.Context, w io.Writer, addr, cmd byte) error {
	board, lock := int(addr>>4), int(addr&0x0F)
	if cmd == cmdUnlock && s.opt.OnUnlock != nil {
		s.opt.OnUnlock(board*LocksPerBoard + lock + 1)
	}
	s.mu.Lock()
	if board >= len(s.silent) || (cmd != cmdStatus && cmd != cmdUnlock) {
		s.ignored++
		s.mu.Unlock()
		s.log.Debug("lockersim: frame for no board here, or an unknown command", "addr", fmt.Sprintf("%02X", addr), "cmd", fmt.Sprintf("%02X", cmd))
		return nil
	}
	if s.silent[board] {
		s.unheard++
		s.mu.Unlock()
		s.log.Debug("lockersim: board silent", "board", board, "cmd", fmt.Sprintf("%02X", cmd))
		return nil
	}
	n := board*LocksPerBoard + lock + 1 // the door an unlock names
	if cmd == cmdStatus {
		s.queries++
	} else {
		s.unlocks++
		if n <= len(s.doors) {
			s.doors[n-1].unlocks++
		}
	}
	// The answer is the state as the board heard the request: an unlocked
	// door has not moved yet.
	out := append(s.garbage, s.reply(addr)...)
	s.garbage = nil
	if s.corrupt {
		out[len(out)-1] ^= 0xFF
		s.corrupt = false
	}
	s.mu.Unlock()

	if len(out) > replyLen {
		s.log.Info("lockersim: fault: garbage before an answer", "bytes", fmt.Sprintf("% X", out[:len(out)-replyLen]))
	}
	if err := firmwaresim.Pace(ctx, w, out, s.opt.Baud); err != nil {
		return fmt.Errorf("lockersim: write: %w", err)
	}
	if cmd == cmdUnlock {
		s.release(n)
	}
	return nil
}

// release lets door n's lock go: unless it is stuck, already open or not
// wired, the door springs open PopDelay later.
func (s *Sim) release(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > len(s.doors) {
		s.log.Info("lockersim: unlock of a lock with no door wired", "door", n)
		return
	}
	d := &s.doors[n-1]
	d.update(time.Now())
	switch {
	case d.stuck:
		s.log.Info("lockersim: fault: door stuck, it did not open", "door", n)
	case d.open || !d.popAt.IsZero():
		s.log.Info("lockersim: unlock of a door already open", "door", n)
	default:
		d.popAt = time.Now().Add(s.opt.PopDelay)
		d.update(time.Now())
		s.log.Info("lockersim: door unlocked", "door", n)
	}
}

// reply builds board's answer echoing addr: a bit set for each lock whose
// door is shut. s.mu must be held.
func (s *Sim) reply(addr byte) []byte {
	board := int(addr >> 4)
	now := time.Now()
	var latched uint16
	for lock := range LocksPerBoard {
		i := board*LocksPerBoard + lock
		if i >= len(s.doors) {
			break // not wired: reads open
		}
		d := &s.doors[i]
		d.update(now)
		if !d.open {
			latched |= 1 << lock
		}
	}
	b := []byte{stx, addr, cmdReply, byte(latched), byte(latched >> 8), 0, 0, etx, 0}
	b[8] = sum(b[:8])
	return b
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}
