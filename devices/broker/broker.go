package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"onecard/fleet/proto"
)

// Limits of the embedded broker, chosen for a site of about 1,000 devices.
// A QoS 1 message held for a client costs about 1.1 KiB plus its payload
// (mochi's packet struct is 800 bytes; measured with a 154-byte change).
const (
	// MaxQueued is how many QoS 1 messages a session holds unacknowledged,
	// connected or not: an offline device's queue, and the window of
	// deliveries onecard's own connection has not yet acknowledged. 4,096
	// is four times the 1,000 changes past which a device is sent a
	// snapshot instead; a full queue only loses the newest messages
	// (Stats.QueueFull), which a device sees as a gap and asks for again.
	// Memory: at most about 4.5 MiB per session of small messages; a day's
	// outage of all 1,000 devices with 300 changes each about 330 MiB; the
	// bound, 1,000 full queues, about 4.5 GiB. (mochi's default: 8,192.)
	MaxQueued = 4096
	// MaxPending is how many messages a connected client's write queue
	// holds before the broker drops new ones for it, for good
	// (Stats.SlowDropped): onecard's connection must keep reading (paho:
	// handlers that do not block). mochi's default; each connection
	// allocates that many pointers, 64 KiB, 64 MiB for 1,000 devices.
	MaxPending = 8192
	// SessionExpiry is how long a persistent session (clean session false)
	// outlives its connection: a device that is offline for up to a week
	// gets its queued messages when it comes back.
	SessionExpiry = 7 * 24 * time.Hour
	// MaxPacket is the largest MQTT packet accepted: a protocol payload
	// (proto.MaxPayload) with room for its topic and headers.
	MaxPacket = 2 * proto.MaxPayload
	// connectTimeout bounds how long a new connection may take to send
	// CONNECT (and finish TLS).
	connectTimeout = 10 * time.Second
)

// kickCode is the reason given to a client the broker disconnects.
var kickCode = packets.ErrAdministrativeAction

// Authenticator says who holds a broker login.
type Authenticator interface {
	// Principal returns who holds username/password, or ok=false. Called on every connect: keep it cheap.
	Principal(username string, password []byte) (proto.Principal, bool)
}

// AuthFunc adapts a function to an Authenticator.
type AuthFunc func(username string, password []byte) (proto.Principal, bool)

// Principal calls f.
func (f AuthFunc) Principal(username string, password []byte) (proto.Principal, bool) {
	return f(username, password)
}

// Options configure the embedded broker.
type Options struct {
	Addr string      // "127.0.0.1:1883"; ":0"-style ports allowed (tests)
	TLS  *tls.Config // optional
	Site string      // topics' site code
	Auth Authenticator
	Log  *slog.Logger
}

// Stats are the broker's counters (for /metrics).
type Stats struct {
	ConnectsRefused      int64 // bad login, client id ≠ username, or a will outside the client's topics
	PublishesDropped     int64 // publishes the ACL refused: acknowledged, never delivered or retained
	SubscriptionsRefused int64 // subscription filters refused (ACL or malformed)
	Kicked               int64 // clients removed by Disconnect
	Connected            int64 // clients connected now
	Sessions             int64 // sessions held, connected or persistent and offline
	Queued               int64 // QoS 1 messages held for clients, not yet acknowledged
	QueueFull            int64 // messages not queued because the session already held MaxQueued
	SlowDropped          int64 // messages dropped because a client's write queue held MaxPending
}

// Broker is onecard's embedded MQTT broker (mochi-mqtt): every client
// logs in, devices only as themselves, and proto.Topics.Allowed decides
// every publish and subscription.
type Broker struct {
	o      Options
	topics proto.Topics
	log    *slog.Logger
	srv    *mqtt.Server
	ln     *listener
	inline *mqtt.Client // publishes the will of a kicked client when mochi did not

	started   atomic.Bool
	closeOnce sync.Once

	refused, dropped, subRefused, kicked atomic.Int64

	sessions sync.Map // *mqtt.Client → *session
	byID     sync.Map // client id → *mqtt.Client last established
}

// session is what the broker knows of a client beyond mochi.
type session struct {
	p        proto.Principal
	will     *mqtt.Will // copied at connect; nil without one
	kicked   atomic.Bool
	willSent atomic.Bool
}

// New returns a broker for o; Start makes it listen.
func New(o Options) (*Broker, error) {
	if !proto.ValidID(o.Site) {
		return nil, fmt.Errorf("broker: invalid site code %q", o.Site)
	}
	if o.Auth == nil {
		return nil, errors.New("broker: no Authenticator")
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:1883"
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	b := &Broker{o: o, topics: proto.Topics{Site: o.Site}, log: o.Log.With("component", "mqtt-broker")}

	caps := mqtt.NewDefaultServerCapabilities()
	// Nothing expires by the broker's decision: mochi's default (24 h)
	// would silently drop the QoS 1 messages queued for a device offline
	// longer than a day, and the retained device states and site
	// configuration a day after they were published. 0 means "no
	// maximum"; a v5 publisher may still set its own message expiry.
	caps.MaximumMessageExpiryInterval = 0
	caps.MaximumSessionExpiryInterval = uint32(SessionExpiry / time.Second)
	caps.MaximumInflight = MaxQueued
	caps.MaximumClientWritesPending = MaxPending
	caps.MaximumPacketSize = MaxPacket
	// Topic aliases are of no use to the protocol, and each alias a client
	// sets costs the broker memory.
	caps.TopicAliasMaximum = 0
	b.srv = mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 slog.New(minLevel{h: b.log.Handler(), min: slog.LevelWarn}).With("from", "mochi"),
		SysTopicResendInterval: 60, // nobody may read $SYS; each tick stops the world for ReadMemStats
	})
	b.inline = b.srv.NewClient(nil, mqtt.LocalListener, "$onecard-broker", true)
	if err := b.srv.AddHook(&hook{b: b}, nil); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return b, nil
}

// Start listens on Options.Addr and serves; it returns once listening.
func (b *Broker) Start() error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("broker: already started")
	}
	b.ln = &listener{addr: b.o.Addr, tls: b.o.TLS, log: b.log, disconnectAll: b.disconnectAll}
	if err := b.srv.AddListener(b.ln); err != nil {
		return fmt.Errorf("broker: listen on %s: %w", b.o.Addr, err)
	}
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	b.log.Info("mqtt broker listening", "addr", b.Addr(), "tls", b.o.TLS != nil, "site", b.o.Site)
	return nil
}

// Addr is the address the broker listens on (host:port), once started.
func (b *Broker) Addr() string {
	if b.ln == nil || b.ln.ln == nil {
		return b.o.Addr
	}
	return b.ln.Address()
}

// Close disconnects every client, stops listening and returns once every
// connection's goroutines have ended. Sessions and retained messages are
// in memory only: they end with the broker.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		_ = b.srv.Close()
	})
	return nil
}

// disconnectAll tells every connected client the broker is going away.
func (b *Broker) disconnectAll() {
	for _, cl := range b.srv.Clients.GetAll() {
		if !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
}

// Disconnect drops the client's connection at once and discards its
// session (subscriptions and queued messages), so a device disabled in
// onecard stops receiving anything. Its will, if any, is published as on
// any connection loss. Refuse the device's login first (the
// Authenticator), or it will simply connect again.
func (b *Broker) Disconnect(clientID string) {
	cl, ok := b.srv.Clients.Get(clientID)
	if !ok {
		return
	}
	// A kicked session is refused everything at once; its record goes
	// when its connection's goroutine ends (hook.OnDisconnect), or now if
	// it has none.
	if s := b.session(cl); s != nil {
		s.kicked.Store(true)
	}
	open := !cl.Closed()
	b.kicked.Add(1)
	_ = b.srv.DisconnectClient(cl, kickCode)
	b.purge(cl)
	if !open {
		b.sessions.Delete(cl)
	}
	b.log.Info("client disconnected by onecard", "client", clientID, "was_connected", open)
}

// purge discards a client's session: subscriptions and queued messages.
// It is called again once the client's read loop has ended, in case a
// packet being processed at the time of the first call subscribed again.
func (b *Broker) purge(cl *mqtt.Client) {
	b.srv.UnsubscribeClient(cl)
	cl.ClearInflights()
	if cur, ok := b.srv.Clients.Get(cl.ID); ok && cur == cl {
		b.srv.Clients.Delete(cl.ID)
	}
	b.byID.CompareAndDelete(cl.ID, cl)
}

// Stats returns the broker's counters. Queued is counted session by
// session: mochi's own count goes wrong when a session is taken over.
func (b *Broker) Stats() Stats {
	info := b.srv.Info
	var queued int64
	for _, cl := range b.srv.Clients.GetAll() {
		queued += int64(cl.State.Inflight.Len())
	}
	return Stats{
		ConnectsRefused:      b.refused.Load(),
		PublishesDropped:     b.dropped.Load(),
		SubscriptionsRefused: b.subRefused.Load(),
		Kicked:               b.kicked.Load(),
		Connected:            atomic.LoadInt64(&info.ClientsConnected),
		Sessions:             int64(b.srv.Clients.Len()),
		Queued:               queued,
		QueueFull:            atomic.LoadInt64(&info.InflightDropped),
		SlowDropped:          atomic.LoadInt64(&info.MessagesDropped),
	}
}

func (b *Broker) session(cl *mqtt.Client) *session {
	if v, ok := b.sessions.Load(cl); ok {
		return v.(*session)
	}
	return nil
}

func (b *Broker) forget(cl *mqtt.Client) {
	b.sessions.Delete(cl)
	b.byID.CompareAndDelete(cl.ID, cl)
}

// publishWill publishes a will mochi did not send (see hook.OnDisconnect).
func (b *Broker) publishWill(cl *mqtt.Client, w *mqtt.Will) {
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: w.Qos, Retain: w.Retain},
		TopicName:   w.TopicName,
		Payload:     w.Payload,
		PacketID:    uint16(w.Qos), // needed to pass validation; the inline client never acknowledges
	}
	if err := b.srv.InjectPacket(b.inline, pk); err != nil {
		b.log.Warn("publishing the will of a disconnected client", "client", cl.ID, "error", err)
	}
}
