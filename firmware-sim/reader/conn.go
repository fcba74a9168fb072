package reader

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"onecard/fleet/proto"
)

// Timing of the connection.
const (
	keepAlive      = 30 * time.Second
	connectTimeout = 10 * time.Second
	minBackoff     = 200 * time.Millisecond
	maxBackoff     = 10 * time.Second
	stopTimeout    = 2 * time.Second // for the offline state at a clean stop
	maxEventBatch  = 100
)

var (
	errLost    = errors.New("reader: connection lost")
	errTimeout = errors.New("reader: no answer from the broker")
)

// link is one MQTT connection: a paho client used once, and its socket, so
// that a power loss can close it without DISCONNECT.
type link struct {
	client   mqtt.Client
	session  uint64
	lost     chan struct{}
	lostOnce sync.Once
	lostErr  error         // why, once lost is closed
	done     chan struct{} // closed by end: the reader has let the link go
	doneOnce sync.Once

	mu   sync.Mutex
	conn *cutConn

	// What the link is asked to send, in order; its writer sends it.
	outMu     sync.Mutex
	out       []outgoing
	outClosed bool
	outKick   chan struct{}
}

func newLink(session uint64) *link {
	return &link{session: session, lost: make(chan struct{}), done: make(chan struct{}), outKick: make(chan struct{}, 1)}
}

// markLost records that paho lost the connection, and why.
func (l *link) markLost(err error) {
	l.lostOnce.Do(func() {
		l.lostErr = err
		close(l.lost)
	})
}

// end tells the link's writer to stop: the reader no longer uses the link.
func (l *link) end() { l.doneOnce.Do(func() { close(l.done) }) }

// drop closes the socket under the client: no DISCONNECT is sent.
func (l *link) drop() {
	l.mu.Lock()
	c := l.conn
	l.mu.Unlock()
	if c != nil {
		c.cut.Store(true)
		c.Close()
	}
}

// outgoing is one request (a publish, a subscription) waiting for the
// link's writer.
type outgoing struct {
	send func(mqtt.Client) mqtt.Token
	s    *sending
}

// sending is a request handed to a link's writer: tok is set, or the link
// ended before the request was made (tok nil), when ready is closed.
type sending struct {
	ready chan struct{}
	tok   mqtt.Token
}

// do hands a request to the link's writer and returns at once. Nothing of
// the reader calls paho on a live link itself: paho's Publish and
// Subscribe wait up to the write timeout (10 s) while the socket takes no
// more, and may wait that long when the connection goes down under them
// (paho stops reading its send queue before it marks itself
// disconnected). One acknowledgement caught that way held up the handling
// of every message, and with it the catch-up on the next connection, for
// 10 s (BenchmarkCatchUp, about one run in fifteen). Now only the writer
// of the link in trouble waits.
func (l *link) do(send func(mqtt.Client) mqtt.Token) *sending {
	s := &sending{ready: make(chan struct{})}
	l.outMu.Lock()
	if l.outClosed {
		l.outMu.Unlock()
		close(s.ready)
		return s
	}
	l.out = append(l.out, outgoing{send, s})
	l.outMu.Unlock()
	select {
	case l.outKick <- struct{}{}:
	default:
	}
	return s
}

// publish hands a QoS 1 publish to the link's writer.
func (l *link) publish(topic string, retained bool, payload []byte) *sending {
	return l.do(func(c mqtt.Client) mqtt.Token { return c.Publish(topic, 1, retained, payload) })
}

// write makes the link's requests, in order, until the link is lost or
// ended; requests left then are never made.
func (l *link) write() {
	defer func() {
		l.outMu.Lock()
		left := l.out
		l.out, l.outClosed = nil, true
		l.outMu.Unlock()
		for _, o := range left {
			close(o.s.ready)
		}
	}()
	for {
		select {
		case <-l.lost:
			return
		case <-l.done:
			return
		case <-l.outKick:
		}
		for {
			l.outMu.Lock()
			if len(l.out) == 0 {
				l.outMu.Unlock()
				break
			}
			o := l.out[0]
			l.out[0] = outgoing{}
			l.out = l.out[1:]
			l.outMu.Unlock()
			o.s.tok = o.send(l.client)
			close(o.s.ready)
		}
	}
}

// cutConn is the link's socket. Once cut, its errors say so: paho takes
// "use of closed network connection" for its own Disconnect and would not
// report the loss.
type cutConn struct {
	net.Conn
	cut atomic.Bool
}

var errCut = errors.New("reader: connection cut")

func (c *cutConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.cut.Load() {
		err = errCut
	}
	return n, err
}

func (c *cutConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && c.cut.Load() {
		err = errCut
	}
	return n, err
}

// why a connection ended.
type ending int

const (
	endStop      ending = iota // Run's context ended: clean stop
	endLost                    // the broker or the network went away
	endPowerLoss               // PowerLoss
	endOffline                 // Offline(true)
	endReboot                  // a reboot command: clean stop, then reconnect
)

// Run connects the reader and keeps it connected until ctx ends: it
// reconnects with jittered exponential backoff, and handles messages,
// events and faults. It returns nil when ctx ends, after publishing the
// offline state and disconnecting cleanly.
func (r *Reader) Run(ctx context.Context) error {
	if u, err := url.Parse(r.opts.Broker); err != nil || u.Host == "" {
		return fmt.Errorf("reader %s: broker URL %q: want tcp://host:port or tls://host:port", r.opts.ID, r.opts.Broker)
	}
	if !r.running.CompareAndSwap(false, true) {
		return fmt.Errorf("reader %s: already running", r.opts.ID)
	}
	defer r.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		r.Flush()
	}()
	wg.Add(2)
	go func() { defer wg.Done(); r.handleLoop(ctx) }()
	go func() { defer wg.Done(); r.sendLoop(ctx) }()
	if r.opts.SaveEvery > 0 && r.opts.StateFile != "" {
		wg.Add(1)
		go func() { defer wg.Done(); r.saveLoop(ctx) }()
	}

	attempt := 0
	for ctx.Err() == nil {
		r.mu.Lock()
		offline := r.offline
		r.mu.Unlock()
		if offline {
			r.sleep(ctx, -1)
			continue
		}
		l, err := r.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			d := backoff(attempt)
			attempt++
			r.log.Warn("connect failed", "err", err, "retry_in", d.Round(time.Millisecond))
			r.sleep(ctx, d)
			continue
		}
		attempt = 0
		switch r.serve(ctx, l) {
		case endStop:
			r.stopClean(l)
		case endReboot:
			r.log.Info("rebooting")
			r.stopClean(l)
			r.sleep(ctx, backoff(0)) // booting
		case endPowerLoss:
			r.stopAbrupt(l)
			r.sleep(ctx, backoff(0)) // booting
		case endOffline:
			r.stopAbrupt(l)
		case endLost:
			r.detach(l)
			d := backoff(attempt)
			attempt++
			r.log.Warn("connection lost", "session", l.session, "err", l.lostErr, "retry_in", d.Round(time.Millisecond))
			r.sleep(ctx, d)
		}
	}
	return nil
}

// backoff is the wait before the attempt after n failures: exponential from
// minBackoff to maxBackoff, with "equal jitter" (half fixed, half random),
// so a thousand readers cut off at once do not come back at once.
func backoff(n int) time.Duration {
	d := maxBackoff
	if n < 16 {
		d = min(maxBackoff, minBackoff<<n)
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d (d < 0: without limit) or until woken or ctx ends.
func (r *Reader) sleep(ctx context.Context, d time.Duration) {
	var t <-chan time.Time
	if d >= 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		t = tm.C
	}
	select {
	case <-ctx.Done():
	case <-r.wake:
	case <-t:
	}
}

// dial opens the socket, keeping it in l.
func (r *Reader) dial(ctx context.Context, l *link, u *url.URL) (net.Conn, error) {
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: keepAlive}
	var conn net.Conn
	var err error
	switch u.Scheme {
	case "tcp", "mqtt", "":
		conn, err = d.DialContext(ctx, "tcp", u.Host)
	case "tls", "ssl", "mqtts", "tcps":
		td := &tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: u.Hostname()}}
		conn, err = td.DialContext(ctx, "tcp", u.Host)
	default:
		return nil, fmt.Errorf("reader: broker scheme %q (tcp or tls)", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	c := &cutConn{Conn: conn}
	l.mu.Lock()
	l.conn = c
	l.mu.Unlock()
	return c, nil
}

// connect makes one connection attempt under a new session number, then
// subscribes, publishes the birth and starts the event replay.
func (r *Reader) connect(ctx context.Context) (*link, error) {
	r.mu.Lock()
	r.session++
	l := newLink(r.session)
	err := r.saveLocked() // a session number is never reused
	r.powerLoss, r.reboot = false, false
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	will, err := proto.Encode(&proto.State{V: proto.Version, State: "offline", Session: l.session})
	if err != nil {
		return nil, err
	}
	stateTopic := r.topics.Device(r.opts.ID, proto.KindState)
	o := mqtt.NewClientOptions().
		AddBroker(r.opts.Broker).
		SetClientID(r.opts.ID).
		SetUsername(r.opts.ID).
		SetPassword(r.opts.Secret).
		SetProtocolVersion(4).
		SetCleanSession(true). // what it missed comes after its birth (docs/mqtt.md)
		SetOrderMatters(true). // the handler only queues: it never blocks
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(keepAlive).
		SetPingTimeout(10*time.Second).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(10*time.Second).
		SetBinaryWill(stateTopic, will, 1, true).
		SetDefaultPublishHandler(r.receive).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			// Not logged here: paho may call this after Run has returned.
			l.markLost(err)
		}).
		SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			return r.dial(ctx, l, u)
		})
	l.client = mqtt.NewClient(o)
	tok := l.client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		l.drop()
		<-tok.Done()
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("reader %s: connect: %w", r.opts.ID, err)
	}
	go l.write()
	if ctx.Err() != nil {
		r.stopClean(l)
		return nil, ctx.Err()
	}
	r.mu.Lock()
	offline := r.offline
	if !offline {
		r.cur = l // acknowledgements of queued messages may go out from now on
	}
	r.mu.Unlock()
	if offline { // the network went down while connecting
		r.stopAbrupt(l)
		return nil, fmt.Errorf("reader %s: network down", r.opts.ID)
	}

	filters := map[string]byte{}
	for _, t := range r.topics.DeviceSubscriptions(r.opts.ID, r.zones) {
		filters[t] = 1
	}
	sub := l.do(func(c mqtt.Client) mqtt.Token { return c.SubscribeMultiple(filters, nil) })
	if err := wait(ctx, sub, l, connectTimeout); err != nil {
		return nil, r.abandon(ctx, l, "subscribe", err)
	}
	for t, q := range sub.tok.(*mqtt.SubscribeToken).Result() {
		if q == 0x80 {
			r.log.Error("subscription refused", "topic", t)
		}
	}

	r.mu.Lock()
	birth := r.birthLocked(l.session)
	r.mu.Unlock()
	if err := wait(ctx, l.publish(stateTopic, true, birth), l, connectTimeout); err != nil {
		return nil, r.abandon(ctx, l, "birth", err)
	}
	r.mu.Lock()
	if r.cur == l { // not dropped meanwhile
		r.online = true
		r.gen++
		r.sentUpTo = r.ackedLocked() // replay everything not acknowledged
	}
	pending := len(r.events)
	r.mu.Unlock()
	r.kick(r.evtKick)
	r.log.Info("online", "session", l.session, "pending_events", pending)
	return l, nil
}

// abandon gives up a connection that failed after CONNACK.
func (r *Reader) abandon(ctx context.Context, l *link, step string, err error) error {
	if ctx.Err() != nil {
		r.stopClean(l)
		return ctx.Err()
	}
	r.stopAbrupt(l)
	return fmt.Errorf("reader %s: %s: %w", r.opts.ID, step, err)
}

// birthLocked encodes the birth of a session.
func (r *Reader) birthLocked(session uint64) []byte {
	_, ok := r.nowLocked()
	b, err := proto.Encode(&proto.State{V: proto.Version, State: "online", Session: session,
		Firmware: r.opts.Firmware, Clock: clockWord(ok), Applied: r.applied})
	if err != nil {
		panic("reader: birth: " + err.Error()) // every field is ours
	}
	return b
}

// wait waits for a request handed to l's writer to be answered, the loss
// of the link, ctx or a timeout. (Paho may leave tokens pending when the
// connection is lost.)
func wait(ctx context.Context, s *sending, l *link, d time.Duration) error {
	var t <-chan time.Time
	if d > 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		t = tm.C
	}
	var tokDone <-chan struct{}
	for ready := s.ready; ; {
		select {
		case <-ready:
			if s.tok == nil {
				return errLost // the link ended first
			}
			ready, tokDone = nil, s.tok.Done()
			continue
		case <-tokDone:
			return s.tok.Error()
		case <-l.lost:
			return errLost
		case <-ctx.Done():
			return ctx.Err()
		case <-t:
			return errTimeout
		}
	}
}

// serve waits until the connection l ends, and says why.
func (r *Reader) serve(ctx context.Context, l *link) ending {
	for {
		select {
		case <-ctx.Done():
			return endStop
		case <-l.lost:
		case <-r.wake:
		}
		r.mu.Lock()
		pl, off, rb := r.powerLoss, r.offline, r.reboot
		r.powerLoss, r.reboot = false, false
		r.mu.Unlock()
		switch {
		case pl:
			return endPowerLoss
		case off:
			return endOffline
		case rb:
			return endReboot
		}
		select {
		case <-l.lost:
			return endLost
		default:
		}
	}
}

// detachLocked makes the reader stop using its connection, returning it.
func (r *Reader) detachLocked() *link {
	l := r.cur
	r.cur, r.online = nil, false
	return l
}

func (r *Reader) detach(l *link) {
	r.mu.Lock()
	if r.cur == l {
		r.detachLocked()
	}
	r.mu.Unlock()
}

// stopClean publishes the offline state itself, then disconnects: a reader
// stopped on purpose is seen offline, without relying on the will.
func (r *Reader) stopClean(l *link) {
	r.detach(l)
	off, _ := proto.Encode(&proto.State{V: proto.Version, State: "offline", Session: l.session})
	sent := l.publish(r.topics.Device(r.opts.ID, proto.KindState), true, off)
	if err := wait(context.Background(), sent, l, stopTimeout); err != nil {
		r.log.Warn("offline state not confirmed", "err", err)
	}
	l.end()
	l.client.Disconnect(250)
	r.log.Info("disconnected", "session", l.session)
}

// stopAbrupt closes the socket without DISCONNECT (the broker publishes the
// will) and waits for paho to notice.
func (r *Reader) stopAbrupt(l *link) {
	r.detach(l)
	l.drop()
	select {
	case <-l.lost:
	case <-time.After(stopTimeout):
		r.log.Warn("paho did not report the dropped connection")
	}
	l.end()
	l.client.Disconnect(0) // releases paho's workers if they were still up
	r.log.Info("connection dropped", "session", l.session)
}

// sendLoop publishes queued events in order, up to maxEventBatch a message,
// each message after the previous one was acknowledged by the broker.
func (r *Reader) sendLoop(ctx context.Context) {
	topic := r.topics.Device(r.opts.ID, proto.KindEvt)
	// Events out and no acknowledgement for a whole tick: the server was
	// away (restarting, not subscribed yet) and the broker dropped them;
	// send them again from the oldest unacknowledged (docs/mqtt.md).
	resend := time.NewTicker(EventResend)
	defer resend.Stop()
	lastAcked := uint64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.evtKick:
		case <-resend.C:
			r.mu.Lock()
			acked := r.ackedLocked()
			stalled := r.online && r.sentUpTo > acked && acked == lastAcked
			if stalled {
				r.sentUpTo = acked
			}
			lastAcked = acked
			r.mu.Unlock()
			if !stalled {
				continue
			}
			r.log.Debug("events unacknowledged: sending them again", "from", acked+1)
		}
		for ctx.Err() == nil {
			r.mu.Lock()
			l, gen := r.cur, r.gen
			var batch []proto.Event
			if l != nil && r.online {
				batch = r.unsentLocked(maxEventBatch)
			}
			r.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			b, n := encodeEvents(batch)
			if n == 0 {
				r.log.Error("event does not fit a message: skipped", "seq", batch[0].Seq)
				n = 1
			} else if err := wait(ctx, l.publish(topic, false, b), l, 0); err != nil {
				r.log.Debug("events not sent", "err", err)
				break // the next connection replays them
			}
			r.mu.Lock()
			if r.gen == gen {
				r.sentUpTo = max(r.sentUpTo, batch[n-1].Seq)
			}
			r.mu.Unlock()
		}
	}
}

// EventResend is how long events may stay unacknowledged before they are
// sent again.
var EventResend = 5 * time.Second

// encodeEvents encodes as many of events as fit one payload.
func encodeEvents(events []proto.Event) ([]byte, int) {
	for n := len(events); n > 0; n /= 2 {
		b, err := proto.Encode(&proto.Events{V: proto.Version, Events: events[:n]})
		if err == nil {
			return b, n
		}
		if !errors.Is(err, proto.ErrTooLarge) {
			return nil, 0
		}
	}
	return nil, 0
}

// publish sends a message on one of the reader's topics, if connected,
// without waiting: the link's writer sends in call order, and a lost
// acknowledgement or sync request is repaired by the protocol (resends,
// the next birth).
func (r *Reader) publish(kind string, p proto.Payload) {
	b, err := proto.Encode(p)
	if err != nil {
		r.log.Error("cannot encode", "kind", kind, "err", err)
		return
	}
	r.mu.Lock()
	l := r.cur
	r.mu.Unlock()
	if l == nil {
		r.log.Debug("not connected: not sent", "kind", kind)
		return
	}
	l.publish(r.topics.Device(r.opts.ID, kind), false, b)
}
