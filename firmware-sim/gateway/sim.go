package gatewaysim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"onecard/gateway"
)

// Defaults for Options.
const (
	DefaultListen        = "127.0.0.1:0"
	DefaultRetryBase     = time.Second
	DefaultRetryMax      = time.Minute
	DefaultAttempts      = 15
	DefaultNotifyTimeout = 5 * time.Second
	// deliveriesKept bounds the delivery log.
	deliveriesKept = 1000
)

// Options configure a Sim.
type Options struct {
	// Key is the gateway's signing key; nil means a new one (PublicKey
	// tells it).
	Key ed25519.PrivateKey
	// Merchants are the merchants who may use the API, by id, with the
	// public halves of their keys.
	Merchants map[string]ed25519.PublicKey
	// Listen is Start's address; "" means 127.0.0.1:0.
	Listen string
	// BaseURL is where phones reach the gateway: the QR contents point
	// there. "" means the listener's URL (Start), or the URL the request
	// came to (a Sim used as a plain http.Handler).
	BaseURL string
	// Window is how far a request's timestamp may be from the gateway's
	// clock; zero means gateway.DefaultWindow.
	Window time.Duration
	// RetryBase is the wait before the first retry of a notification,
	// doubling with each retry up to RetryMax; Attempts is how many times a
	// notification is tried in all. Zero means the defaults.
	RetryBase, RetryMax time.Duration
	Attempts            int
	// NotifyTimeout bounds one delivery; zero means the default.
	NotifyTimeout time.Duration
	// Log receives requests at debug level, orders and deliveries at info;
	// nil discards.
	Log *slog.Logger
}

// Order is an order as the gateway keeps it.
type Order struct {
	Merchant  string
	Ref       string
	Txn       string
	State     string // pending, paid, closed
	AmountFen int64
	Subject   string
	NotifyURL string
	QRContent string
	CreatedAt time.Time
	ExpiresAt time.Time
	PaidAt    time.Time
	// ClosedBy says who closed it: merchant (the API), payer (the page),
	// gateway (Close), expired.
	ClosedBy string
	ClosedAt time.Time
}

// Delivery is one attempt to deliver a notification.
type Delivery struct {
	Txn     string
	Ref     string
	State   string // the notification's: paid, closed
	Attempt int    // 1, 2, …; a duplicate has the number of the attempt it repeats
	// Kind: first, retry, late (the first, held back and signed at payment
	// time), duplicate (the 2xx'd attempt sent again, byte for byte).
	Kind   string
	BadSig bool
	Status int    // the receiver's HTTP status; 0 if none
	Err    string // why there was no status
	At     time.Time
}

// Status is the simulator's state, for a console.
type Status struct {
	Orders, Pending, Paid, Closed int
	Deliveries, Delivering        int
	Twice, BadSig                 bool
	Late                          time.Duration
}

// Errors of Pay and Close.
var (
	ErrNotFound   = errors.New("gatewaysim: no such order")
	ErrNotPending = errors.New("gatewaysim: the order is not pending")
)

// Sim is a simulated payment gateway; it is an http.Handler. Its methods
// are safe for concurrent use.
type Sim struct {
	opt    Options
	key    ed25519.PrivateKey
	keyID  string
	log    *slog.Logger
	mux    *http.ServeMux
	client *http.Client

	ctx    context.Context // ends at Stop: stops deliveries
	cancel context.CancelFunc
	wg     sync.WaitGroup // deliveries and the server

	mu         sync.Mutex
	baseURL    string            // of the QR codes
	url        string            // of the listener
	orders     map[string]*Order // by txn
	byRef      map[string]string // merchant + "\x00" + ref → txn
	txns       []string          // in the order of creation
	nonces     map[string]time.Time
	twice      bool
	late       time.Duration
	badSig     bool
	deliveries []Delivery
	delivering int
	srv        *http.Server
	served     chan error
	closed     bool
}

// New returns a gateway to use as an http.Handler; Start returns one
// that also listens.
func New(o Options) (*Sim, error) {
	if o.Key == nil {
		o.Key = gateway.GenerateKey()
	}
	if len(o.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("gatewaysim: the key is not an Ed25519 private key")
	}
	for id, k := range o.Merchants {
		if !gateway.ValidTxn(id) || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("gatewaysim: merchant %q: want an id of letters, digits, '-', '_' and an Ed25519 public key", id)
		}
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.BaseURL != "" && !gateway.ValidNotifyURL(o.BaseURL) {
		return nil, fmt.Errorf("gatewaysim: base URL %q: want http(s)://host[:port]", o.BaseURL)
	}
	o.BaseURL = strings.TrimSuffix(o.BaseURL, "/")
	switch {
	case o.Window < 0 || o.RetryBase < 0 || o.RetryMax < 0 || o.Attempts < 0 || o.NotifyTimeout < 0:
		return nil, errors.New("gatewaysim: negative option")
	}
	if o.Window == 0 {
		o.Window = gateway.DefaultWindow
	}
	if o.RetryBase == 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RetryMax == 0 {
		o.RetryMax = DefaultRetryMax
	}
	o.RetryMax = max(o.RetryMax, o.RetryBase)
	if o.Attempts == 0 {
		o.Attempts = DefaultAttempts
	}
	if o.NotifyTimeout == 0 {
		o.NotifyTimeout = DefaultNotifyTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{
		opt:     o,
		key:     o.Key,
		keyID:   gateway.KeyID(o.Key.Public().(ed25519.PublicKey)),
		log:     o.Log,
		client:  &http.Client{Timeout: o.NotifyTimeout},
		ctx:     ctx,
		cancel:  cancel,
		baseURL: o.BaseURL,
		orders:  map[string]*Order{},
		byRef:   map[string]string{},
		nonces:  map[string]time.Time{},
	}
	s.routes()
	return s, nil
}

// Start returns a gateway listening on Options.Listen (127.0.0.1 and a
// free port by default) and serving there until Stop.
func Start(o Options) (*Sim, error) {
	s, err := New(o)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.opt.Listen)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("gatewaysim: %w", err)
	}
	s.mu.Lock()
	s.url = "http://" + ln.Addr().String()
	if s.baseURL == "" {
		s.baseURL = s.url
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	s.served = make(chan error, 1)
	s.mu.Unlock()
	s.wg.Go(func() {
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.served <- err
		}
	})
	s.log.Info("gatewaysim: listening", "url", s.URL(), "qr_base", s.base(nil), "key_id", s.keyID)
	return s, nil
}

// URL returns where the gateway listens (its API and pay pages): the
// listener's URL, or Options.BaseURL for a Sim not started.
func (s *Sim) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.url != "" {
		return s.url
	}
	return s.baseURL
}

// Served delivers the server's error if it stops by itself (not by
// Stop); nil for a Sim not started.
func (s *Sim) Served() <-chan error { return s.served }

// PublicKey returns the public half of the gateway's key: what onecard
// verifies with.
func (s *Sim) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// KeyID returns gateway.KeyID of the gateway's key.
func (s *Sim) KeyID() string { return s.keyID }

// Stop stops listening, drops the notifications not yet delivered, and
// returns when every goroutine of the Sim has ended.
func (s *Sim) Stop() error {
	s.mu.Lock()
	srv, already := s.srv, s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return nil
	}
	s.cancel()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	s.wg.Wait()
	return err
}

// SetTwice makes every notification made from now on be delivered twice:
// after its 2xx, the same request again, byte for byte.
func (s *Sim) SetTwice(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.twice = on
}

// SetLate holds back the first delivery of every notification made from
// now on by d, and sends it with the signature made at payment time; 0
// turns it off. Retries are signed afresh.
func (s *Sim) SetLate(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.late = max(d, 0)
}

// SetBadSig damages the signature of every delivery (first or retry) made
// while it is on.
func (s *Sim) SetBadSig(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.badSig = on
}

// Pay pays a pending order as its payer would: it is paid now, and its
// notification is on its way.
func (s *Sim) Pay(txn string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.pending(txn)
	if err != nil {
		return Order{}, err
	}
	o.State, o.PaidAt = gateway.StatePaid, time.Now().UTC().Truncate(time.Millisecond)
	s.log.Info("gatewaysim: paid", "txn", o.Txn, "ref", o.Ref, "amount_fen", o.AmountFen)
	s.notify(*o)
	return *o, nil
}

// Close closes a pending order as the gateway would, and notifies the
// merchant.
func (s *Sim) Close(txn string) (Order, error) { return s.closeOrder(txn, "gateway") }

func (s *Sim) closeOrder(txn, by string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.pending(txn)
	if err != nil {
		return Order{}, err
	}
	o.State, o.ClosedBy, o.ClosedAt = gateway.StateClosed, by, time.Now().UTC()
	s.log.Info("gatewaysim: closed", "txn", o.Txn, "ref", o.Ref, "by", by)
	s.notify(*o)
	return *o, nil
}

// pending returns a pending order by txn. s.mu must be held.
func (s *Sim) pending(txn string) (*Order, error) {
	o := s.orders[txn]
	if o == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, txn)
	}
	s.expire(o, time.Now())
	if o.State != gateway.StatePending {
		return nil, fmt.Errorf("%w: %s is %s", ErrNotPending, txn, o.State)
	}
	return o, nil
}

// expire closes o if it is pending past its expiry. s.mu must be held.
func (s *Sim) expire(o *Order, now time.Time) {
	if o.State == gateway.StatePending && !now.Before(o.ExpiresAt) {
		o.State, o.ClosedBy, o.ClosedAt = gateway.StateClosed, "expired", o.ExpiresAt
		s.log.Info("gatewaysim: expired", "txn", o.Txn, "ref", o.Ref)
	}
}

// Find returns an order by its txn, or by a ref (of any merchant).
func (s *Sim) Find(id string) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.orders[id]; o != nil {
		s.expire(o, time.Now())
		return *o, true
	}
	for _, txn := range s.txns {
		if o := s.orders[txn]; o.Ref == id {
			s.expire(o, time.Now())
			return *o, true
		}
	}
	return Order{}, false
}

// Orders returns the orders, oldest first.
func (s *Sim) Orders() []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := make([]Order, 0, len(s.txns))
	for _, txn := range s.txns {
		o := s.orders[txn]
		s.expire(o, now)
		out = append(out, *o)
	}
	return out
}

// Deliveries returns the delivery attempts so far (the last 1,000),
// oldest first.
func (s *Sim) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// Status returns the simulator's state.
func (s *Sim) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Orders: len(s.orders), Deliveries: len(s.deliveries), Delivering: s.delivering, Twice: s.twice, BadSig: s.badSig, Late: s.late}
	now := time.Now()
	for _, o := range s.orders {
		s.expire(o, now)
		switch o.State {
		case gateway.StatePending:
			st.Pending++
		case gateway.StatePaid:
			st.Paid++
		case gateway.StateClosed:
			st.Closed++
		}
	}
	return st
}

// newTxn returns a fresh transaction id: GW, the date, 12 hex digits.
func newTxn(now time.Time) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "GW" + now.UTC().Format("20060102") + strings.ToUpper(hex.EncodeToString(b))
}
