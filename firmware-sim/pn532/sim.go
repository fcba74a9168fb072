package pn532sim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	firmwaresim "onecard/firmware-sim"
	"sync"
	"time"

	"onecard/devices/pn532"
)

// DefaultFirmware is what GetFirmwareVersion answers unless Options say
// otherwise: IC PN532, version 1.6, supports ISO/IEC 14443 A and B and
// ISO 18092.
var DefaultFirmware = [4]byte{0x32, 0x01, 0x06, 0x07}

// Options configure a Sim. The zero value is a fast PN532 with the default
// firmware.
type Options struct {
	// Baud paces output at this rate, 10 bits a byte (8N1); 0 sends at once.
	Baud int
	// RFLatency is added before each response that involves the card
	// (InListPassiveTarget finding one, InDataExchange).
	RFLatency time.Duration
	// Firmware is IC, Ver, Rev, Support; zero means DefaultFirmware.
	Firmware [4]byte
	// Log receives frames at debug level and faults at info; nil discards.
	Log *slog.Logger
}

// Command codes (UM0701-02 §7).
const (
	cmdGetFirmwareVersion  = 0x02
	cmdSAMConfiguration    = 0x14
	cmdRFConfiguration     = 0x32
	cmdInDataExchange      = 0x40
	cmdInListPassiveTarget = 0x4A
	cmdInRelease           = 0x52
)

// Status codes of InDataExchange and InRelease (UM0701-02 §7.1).
const (
	statusOK      = 0x00
	statusTimeout = 0x01 // the target did not answer
	statusAuth    = 0x14 // MIFARE: authentication (or access) refused
	statusContext = 0x27 // no such target
)

// MIFARE Classic commands carried by InDataExchange.
const (
	mfAuthA = 0x60
	mfAuthB = 0x61
	mfRead  = 0x30
	mfWrite = 0xA0
)

// activationTry is how long one passive activation attempt takes without a
// card, so MxRtyPassiveActivation n answers "0 targets" after (n+1)·2 ms.
const activationTry = 2 * time.Millisecond

// retryForever is MxRtyPassiveActivation's "wait for a card" value and its
// power-on default.
const retryForever = 0xFF

// target is the state of the PN532's one target (Tg 1).
type target int

const (
	noTarget   target = iota // none listed, or released
	activeTg                 // listed and answering
	lostTarget               // listed, but halted or gone: exchanges time out
)

// Errors from a command handler that are not a response.
var (
	errSyntax = errors.New("syntax error") // answer the error frame
	errDrop   = errors.New("dropped")      // aborted or powered off: no answer
)

// Sim is a simulated PN532 and its antenna. Its methods are safe for
// concurrent use; Serve one link at a time.
type Sim struct {
	opt  Options
	log  *slog.Logger
	kick chan struct{} // tells Serve that PowerLoss happened

	mu         sync.Mutex
	card       *Card
	placed     chan struct{} // closed (and replaced) when a card is placed
	tg         target
	authSector int // -1: not authenticated
	authB      bool
	retries    byte // MxRtyPassiveActivation
	asleep     bool // after PowerLoss, until wake-up + SAMConfiguration
	woken      bool // asleep, but the 0x55 wake-up bytes were seen
	gen        int  // counts power losses, to drop stale responses

	garbage                       []byte
	dropACK, corrupt, removeWrite bool
}

// New returns a PN532 in its power-on state with an empty antenna.
func New(o Options) *Sim {
	if o.Firmware == [4]byte{} {
		o.Firmware = DefaultFirmware
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Sim{
		opt:        o,
		log:        o.Log,
		kick:       make(chan struct{}, 1),
		placed:     make(chan struct{}),
		authSector: -1,
		retries:    retryForever,
	}
}

// Place puts c on the antenna, in place of any card there. A card that was
// selected is lost: it must be listed again. Place(nil) is Remove.
func (s *Sim) Place(c *Card) {
	if c == nil {
		s.Remove()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseCard()
	s.card = c
	close(s.placed)
	s.placed = make(chan struct{})
	s.log.Info("pn532sim: card placed", "uid", fmt.Sprintf("%X", c.uid))
}

// Remove lifts the card off the antenna.
func (s *Sim) Remove() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseCard()
	if s.card != nil {
		s.log.Info("pn532sim: card removed", "uid", fmt.Sprintf("%X", s.card.uid))
	}
	s.card = nil
}

// Card returns the card on the antenna, nil if none.
func (s *Sim) Card() *Card {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.card
}

// Status is a snapshot of the simulator's state.
type Status struct {
	Card       []byte // UID of the card on the antenna, nil if none
	Selected   bool   // a target is listed and answering
	AuthSector int    // sector of the current authentication, -1 if none
	KeyB       bool   // that authentication used key B
	Asleep     bool   // powered off by PowerLoss, waiting for the wake-up
	Retries    byte   // MxRtyPassiveActivation
}

// Status returns the simulator's state.
func (s *Sim) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		Selected:   s.tg == activeTg,
		AuthSector: s.authSector,
		KeyB:       s.authB,
		Asleep:     s.asleep,
		Retries:    s.retries,
	}
	if s.card != nil {
		st.Card = s.card.UID()
	}
	return st
}

// InjectGarbage writes b before the next outgoing frame (ACK, NACK or
// response).
func (s *Sim) InjectGarbage(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.garbage = append(s.garbage, b...)
}

// DropNextACK makes the simulator ignore the next command frame entirely:
// no ACK, no execution, no response. The driver should resend it.
func (s *Sim) DropNextACK() { s.arm(&s.dropACK) }

// CorruptNextResponse sends the next response frame with a bad DCS. A NACK
// from the host then gets the response again, intact.
func (s *Sim) CorruptNextResponse() { s.arm(&s.corrupt) }

// RemoveCardOnNextWrite lifts the card during the next MIFARE WRITE: the
// block keeps its old contents and the exchange answers status 01 (time out).
func (s *Sim) RemoveCardOnNextWrite() { s.arm(&s.removeWrite) }

// PowerLoss resets the chip: it forgets the target, the authentication and
// its RF configuration, drops any command in progress, and stays silent
// until it sees the HSU wake-up (0x55 bytes before a frame's start code)
// followed by a SAMConfiguration command.
func (s *Sim) PowerLoss() {
	s.mu.Lock()
	s.asleep, s.woken = true, false
	s.tg, s.authSector = noTarget, -1
	s.retries = retryForever
	s.gen++
	s.mu.Unlock()
	s.log.Info("pn532sim: power loss")
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Sim) arm(fault *bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*fault = true
}

// take consumes an armed fault. s.mu must be held.
func take(fault *bool) bool {
	armed := *fault
	*fault = false
	return armed
}

// loseCard ends the session with the card, which loses power or changes.
// s.mu must be held.
func (s *Sim) loseCard() {
	if s.tg == activeTg {
		s.tg = lostTarget
	}
	s.authSector = -1
}

// halt is what a card does after an error: it drops out of the session.
// s.mu must be held.
func (s *Sim) halt() {
	s.tg = lostTarget
	s.authSector = -1
}

// event is what the frame reader hands the serving loop.
type event struct {
	f     pn532.Frame
	err   error // a codec error: the frame is lost, the link is not
	ioErr error // the link failed
	wake  bool  // 0x55 bytes came before the frame's start code
}

// Serve answers the host on rw until ctx is done (it then returns ctx's
// error) or rw fails. When ctx ends, Serve sets a past deadline on rw if rw
// has SetDeadline or SetReadDeadline, to stop its reader and return at
// once; otherwise a read in progress holds a goroutine until rw is closed.
func (s *Sim) Serve(ctx context.Context, rw io.ReadWriter) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	events := make(chan event)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		readFrames(rw, events, ctx.Done(), s.opt.Baud)
	}()
	unblocked := firmwaresim.UnblockReads(ctx, rw)

	l := &loop{s: s, rw: rw}
	err := l.run(ctx, events)
	cancel()
	l.abort()
	if unblocked() {
		<-readerDone
	}
	if parent.Err() != nil {
		return parent.Err()
	}
	return err
}

// readFrames parses host frames from r until r fails. With baud set, a
// frame is not acted on before it could have arrived on a real line: a pty
// delivers it at once, a UART at 10 bits a byte.
func readFrames(r io.Reader, events chan<- event, done <-chan struct{}, baud int) {
	t := &tap{r: bufio.NewReader(r)}
	for {
		t.reset()
		f, err := pn532.ReadFrame(t)
		if baud > 0 && err == nil {
			arrived := t.first.Add(time.Duration(t.n) * 10 * time.Second / time.Duration(baud))
			if d := time.Until(arrived); d > 0 {
				time.Sleep(d)
			}
		}
		ev := event{f: f, err: err, wake: t.wake}
		if err != nil && !errors.Is(err, pn532.ErrLengthChecksum) && !errors.Is(err, pn532.ErrDataChecksum) && !errors.Is(err, pn532.ErrExtended) {
			ev = event{ioErr: err}
		}
		select {
		case events <- ev:
		case <-done:
			return
		}
		if ev.ioErr != nil {
			return
		}
	}
}

// tap watches the bytes ReadFrame skips before a start code, for the HSU
// wake-up (0x55…).
type tap struct {
	r       *bufio.Reader
	prev    byte
	started bool
	wake    bool
	n       int       // bytes of this frame, from its start code
	first   time.Time // when its start code arrived
}

func (t *tap) reset() { t.prev, t.started, t.wake, t.n = 0x01, false, false, 0 }

func (t *tap) ReadByte() (byte, error) {
	b, err := t.r.ReadByte()
	if err != nil {
		return b, err
	}
	if t.started {
		t.n++
		return b, nil
	}
	if b == 0x55 {
		t.wake = true
	}
	t.started = t.prev == 0x00 && b == 0xFF
	if t.started {
		t.first, t.n = time.Now(), 3 // preamble and start code
	}
	t.prev = b
	return b, nil
}

// loop is one Serve call's state: the command in progress and the last
// response, for NACKs.
type loop struct {
	s    *Sim
	rw   io.ReadWriter
	pend *pending
	last []byte
}

// pending is a command being executed.
type pending struct {
	cancel context.CancelFunc
	done   chan []byte // the response frame; nil for none
	gen    int
}

func (l *loop) run(ctx context.Context, events <-chan event) error {
	s := l.s
	for {
		var done <-chan []byte
		if l.pend != nil {
			done = l.pend.done
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-events:
			if ev.ioErr != nil {
				return fmt.Errorf("pn532sim: read: %w", ev.ioErr)
			}
			if err := l.onFrame(ctx, ev); err != nil {
				return err
			}
		case resp := <-done:
			p := l.pend
			p.cancel()
			l.pend = nil
			s.mu.Lock()
			stale := p.gen != s.gen
			s.mu.Unlock()
			if resp == nil || stale {
				continue
			}
			if err := l.respond(ctx, resp); err != nil {
				return err
			}
		case <-s.kick:
			s.mu.Lock()
			asleep := s.asleep
			s.mu.Unlock()
			if asleep {
				l.abort()
				l.last = nil
			}
		}
	}
}

func (l *loop) onFrame(ctx context.Context, ev event) error {
	s := l.s
	s.mu.Lock()
	if s.asleep {
		if ev.wake {
			s.woken = true
		}
		f := ev.f
		if !s.woken || ev.err != nil || f.Kind != pn532.Normal || f.TFI != pn532.HostToPN532 || len(f.Data) == 0 || f.Data[0] != cmdSAMConfiguration {
			s.mu.Unlock()
			s.log.Debug("pn532sim: asleep, frame ignored", "kind", f.Kind, "data", hexs(f.Data), "err", ev.err)
			return nil
		}
		s.asleep, s.woken = false, false
		l.last = nil
		s.log.Info("pn532sim: woken up")
	}
	s.mu.Unlock()

	if ev.err != nil {
		s.log.Debug("pn532sim: bad host frame, NACK", "err", ev.err)
		return l.write(ctx, pn532.NACK)
	}
	switch ev.f.Kind {
	case pn532.Ack:
		if l.pend != nil {
			s.log.Debug("pn532sim: host ACK aborts the command in progress")
			l.abort()
		}
		return nil
	case pn532.Nack:
		if l.pend == nil && l.last != nil {
			s.log.Debug("pn532sim: host NACK, resending", "frame", hexs(l.last))
			return l.write(ctx, l.last)
		}
		return nil
	case pn532.AppError:
		return nil
	}
	s.log.Debug("pn532sim: command", "tfi", fmt.Sprintf("%02X", ev.f.TFI), "data", hexs(ev.f.Data))
	s.mu.Lock()
	drop := take(&s.dropACK)
	s.mu.Unlock()
	if drop {
		s.log.Info("pn532sim: fault: command dropped, not ACKed")
		return nil
	}
	// A new command supersedes one in progress.
	l.abort()
	if err := l.write(ctx, pn532.ACK); err != nil {
		return err
	}
	l.start(ctx, ev.f)
	return nil
}

func (l *loop) start(ctx context.Context, f pn532.Frame) {
	s := l.s
	pctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	p := &pending{cancel: cancel, done: make(chan []byte, 1), gen: s.gen}
	s.mu.Unlock()
	go func() { p.done <- s.execute(pctx, f) }()
	l.pend = p
}

// abort cancels the command in progress, if any, and waits for it.
func (l *loop) abort() {
	if l.pend == nil {
		return
	}
	l.pend.cancel()
	<-l.pend.done
	l.pend = nil
}

// respond sends a response frame and keeps it for NACKs.
func (l *loop) respond(ctx context.Context, frame []byte) error {
	s := l.s
	l.last = frame
	s.mu.Lock()
	corrupt := take(&s.corrupt)
	s.mu.Unlock()
	if corrupt {
		bad := append([]byte(nil), frame...)
		bad[len(bad)-2] ^= 0xFF // DCS
		s.log.Info("pn532sim: fault: response sent with a bad DCS")
		frame = bad
	}
	s.log.Debug("pn532sim: response", "frame", hexs(frame))
	return l.write(ctx, frame)
}

// write sends a frame, after any injected garbage, at the line's pace.
func (l *loop) write(ctx context.Context, frame []byte) error {
	s := l.s
	s.mu.Lock()
	out := append(s.garbage, frame...)
	injected := len(s.garbage)
	s.garbage = nil
	s.mu.Unlock()
	if injected > 0 {
		s.log.Info("pn532sim: fault: garbage before a frame", "bytes", hexs(out[:injected]))
	}
	if err := firmwaresim.Pace(ctx, l.rw, out, s.opt.Baud); err != nil {
		return fmt.Errorf("pn532sim: write: %w", err)
	}
	return nil
}

// execute runs a command and returns the frame to answer (nil for none).
func (s *Sim) execute(ctx context.Context, f pn532.Frame) []byte {
	if f.TFI != pn532.HostToPN532 || len(f.Data) == 0 {
		return pn532.ErrorFrame
	}
	code, p := f.Data[0], f.Data[1:]
	var out []byte
	var err error
	switch code {
	case cmdGetFirmwareVersion:
		out = s.opt.Firmware[:]
	case cmdSAMConfiguration:
		err = s.samConfiguration(p)
	case cmdRFConfiguration:
		err = s.rfConfiguration(p)
	case cmdInListPassiveTarget:
		out, err = s.listPassiveTarget(ctx, p)
	case cmdInDataExchange:
		out, err = s.dataExchange(ctx, p)
	case cmdInRelease:
		out, err = s.release(p)
	default:
		err = errSyntax
	}
	switch {
	case errors.Is(err, errDrop) || ctx.Err() != nil:
		return nil
	case err != nil:
		return pn532.ErrorFrame
	}
	frame, err := pn532.Encode(pn532.PN532ToHost, append([]byte{code + 1}, out...))
	if err != nil {
		return pn532.ErrorFrame
	}
	return frame
}

// lockAwake locks s.mu unless the chip lost power meanwhile.
func (s *Sim) lockAwake() bool {
	s.mu.Lock()
	if s.asleep {
		s.mu.Unlock()
		return false
	}
	return true
}

// samConfiguration: Mode (1 normal, 2 virtual card, 3 wired, 4 dual)
// [Timeout [IRQ]]. The simulator has no SAM: every mode is accepted.
func (s *Sim) samConfiguration(p []byte) error {
	if len(p) < 1 || len(p) > 3 || p[0] < 1 || p[0] > 4 {
		return errSyntax
	}
	return nil
}

// rfItemLen is the length of each RFConfiguration item's data.
var rfItemLen = map[byte]int{
	0x01: 1,  // RF field
	0x02: 3,  // various timings
	0x04: 1,  // MaxRtyCOM
	0x05: 3,  // MxRtyATR, MxRtyPSL, MxRtyPassiveActivation
	0x0A: 11, // analog settings, 106 kbps type A
	0x0B: 8,  // analog settings, 212/424 kbps
	0x0C: 3,  // analog settings, type B
	0x0D: 9,  // analog settings, 212/424/848 kbps ISO/IEC 14443-4
}

func (s *Sim) rfConfiguration(p []byte) error {
	if len(p) < 1 {
		return errSyntax
	}
	if n, ok := rfItemLen[p[0]]; !ok || len(p)-1 != n {
		return errSyntax
	}
	if !s.lockAwake() {
		return errDrop
	}
	defer s.mu.Unlock()
	switch p[0] {
	case 0x01:
		if p[1]&0x01 == 0 { // field off: the card loses power
			s.loseCard()
		}
	case 0x05:
		s.retries = p[3]
	}
	return nil
}

// listPassiveTarget: MaxTg BrTy [InitiatorData]. Only 106 kbps type A cards
// exist here; InitiatorData, if any, is the UID of the card wanted.
func (s *Sim) listPassiveTarget(ctx context.Context, p []byte) ([]byte, error) {
	if len(p) < 2 || p[0] < 1 || p[0] > 2 || p[1] > 4 {
		return nil, errSyntax
	}
	brTy, want := p[1], p[2:]
	if !s.lockAwake() {
		return nil, errDrop
	}
	s.tg, s.authSector = noTarget, -1
	retries := s.retries
	s.mu.Unlock()

	c, err := s.waitCard(ctx, retries, func(c *Card) bool {
		return brTy == 0x00 && (len(want) == 0 || bytes.Equal(want, c.uid))
	})
	if err != nil {
		return nil, err
	}
	if c == nil {
		return []byte{0}, nil
	}
	if err := firmwaresim.Sleep(ctx, s.opt.RFLatency); err != nil {
		return nil, errDrop
	}
	if !s.lockAwake() {
		return nil, errDrop
	}
	defer s.mu.Unlock()
	if s.card != c { // lifted meanwhile
		return []byte{0}, nil
	}
	s.tg = activeTg
	atqa := c.atqa()
	out := []byte{1, 1, atqa[0], atqa[1], sak, byte(len(c.uid))}
	return append(out, c.uid...), nil
}

// waitCard waits for a card that fits, as MxRtyPassiveActivation says:
// retryForever waits until one is placed; otherwise it gives up after
// retries+1 attempts and returns nil.
func (s *Sim) waitCard(ctx context.Context, retries byte, fits func(*Card) bool) (*Card, error) {
	var giveUp <-chan time.Time
	if retries != retryForever {
		t := time.NewTimer(time.Duration(int(retries)+1) * activationTry)
		defer t.Stop()
		giveUp = t.C
	}
	for {
		s.mu.Lock()
		c, placed := s.card, s.placed
		s.mu.Unlock()
		if c != nil && fits(c) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, errDrop
		case <-giveUp:
			return nil, nil
		case <-placed:
		}
	}
}

// dataExchange: Tg DataOut, DataOut being a MIFARE Classic command.
func (s *Sim) dataExchange(ctx context.Context, p []byte) ([]byte, error) {
	if len(p) < 2 {
		return nil, errSyntax
	}
	tg, m := p[0], p[1:]
	if err := firmwaresim.Sleep(ctx, s.opt.RFLatency); err != nil {
		return nil, errDrop
	}
	if !s.lockAwake() {
		return nil, errDrop
	}
	defer s.mu.Unlock()
	switch {
	case tg != 1 || s.tg == noTarget:
		return []byte{statusContext}, nil
	case s.tg == lostTarget || s.card == nil:
		return []byte{statusTimeout}, nil
	}
	status, data := s.mifare(m)
	return append([]byte{status}, data...), nil
}

// mifare runs one MIFARE Classic command on the selected card. s.mu must be
// held.
func (s *Sim) mifare(m []byte) (status byte, data []byte) {
	c := s.card
	refuse := func() (byte, []byte) {
		s.halt()
		return statusAuth, nil
	}
	authed := func(blk byte) bool { return int(blk) < Blocks && s.authSector == int(blk)/4 }
	switch m[0] {
	case mfAuthA, mfAuthB:
		// blk, key (6), UID (4)
		if len(m) != 12 || !c.auth(int(m[1]), m[0] == mfAuthB, m[2:8], m[8:12]) {
			return refuse()
		}
		s.authSector, s.authB = int(m[1])/4, m[0] == mfAuthB
		return statusOK, nil
	case mfRead:
		if len(m) != 2 || !authed(m[1]) {
			return refuse()
		}
		b, ok := c.read(int(m[1]), s.authB)
		if !ok {
			return refuse()
		}
		return statusOK, b[:]
	case mfWrite:
		if take(&s.removeWrite) {
			s.log.Info("pn532sim: fault: card lifted during a write")
			s.loseCard()
			s.card = nil
			return statusTimeout, nil
		}
		if len(m) != 18 || !authed(m[1]) || !c.write(int(m[1]), s.authB, [16]byte(m[2:18])) {
			return refuse()
		}
		return statusOK, nil
	}
	return refuse()
}

// release: Tg (0 for all). Releasing a target that does not exist answers
// status 27.
func (s *Sim) release(p []byte) ([]byte, error) {
	if len(p) != 1 {
		return nil, errSyntax
	}
	if !s.lockAwake() {
		return nil, errDrop
	}
	defer s.mu.Unlock()
	if p[0] > 1 || (p[0] == 1 && s.tg == noTarget) {
		return []byte{statusContext}, nil
	}
	s.tg, s.authSector = noTarget, -1
	return []byte{statusOK}, nil
}

func hexs(b []byte) string { return fmt.Sprintf("% X", b) }
