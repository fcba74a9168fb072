package broker

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// listener is a TCP (or TLS) listener for mochi that, unlike mochi's own,
// gives a new connection connectTimeout to send CONNECT, and closes on
// Close the connections that have not yet logged in: mochi waits for
// every connection's goroutine, and one that never sent CONNECT would
// hold Close forever.
type listener struct {
	addr string
	tls  *tls.Config
	log  *slog.Logger
	// disconnectAll replaces mochi's CloseFn, whose Clients.GetByListener
	// takes its read lock twice and deadlocks when a client leaves at the
	// same time.
	disconnectAll func()

	ln     net.Listener
	served chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) ID() string       { return "onecard" }
func (l *listener) Protocol() string { return "tcp" }

func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

func (l *listener) Init(*slog.Logger) error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	if l.tls != nil {
		ln = tls.NewListener(ln, l.tls)
	}
	l.ln = ln
	l.served = make(chan struct{})
	l.conns = map[net.Conn]struct{}{}
	return nil
}

func (l *listener) Serve(establish listeners.EstablishFn) {
	defer close(l.served)
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.isClosed() {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("mqtt accept", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !l.track(c) {
			c.Close()
			return
		}
		// mochi replaces this deadline by the keep-alive's once CONNECT is read.
		_ = c.SetDeadline(time.Now().Add(connectTimeout))
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer l.untrack(c)
			if err := establish(l.ID(), c); err != nil {
				l.log.Debug("mqtt connection ended", "remote", c.RemoteAddr().String(), "error", err)
			}
		}()
	}
}

// Close disconnects the logged-in clients, stops accepting, closes the
// connections left and waits for their goroutines.
func (l *listener) Close(listeners.CloseFn) {
	if l.disconnectAll != nil {
		l.disconnectAll()
	}
	l.mu.Lock()
	l.closed = true
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	if l.ln == nil {
		return
	}
	l.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	<-l.served
	l.wg.Wait()
}

func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

func (l *listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}
