package broker

import (
	"bytes"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"onecard/fleet/proto"
)

// hook is the broker's authentication and ACL, as a mochi hook.
type hook struct {
	mqtt.HookBase
	b *Broker
}

var _ mqtt.Hook = (*hook)(nil)

func (h *hook) ID() string { return "onecard-auth" }

func (h *hook) Provides(b byte) bool {
	return bytes.IndexByte([]byte{
		mqtt.OnConnectAuthenticate,
		mqtt.OnACLCheck,
		mqtt.OnPublish,
		mqtt.OnSubscribed,
		mqtt.OnSessionEstablished,
		mqtt.OnWillSent,
		mqtt.OnDisconnect,
		mqtt.OnClientExpired,
	}, b) >= 0
}

// OnConnectAuthenticate asks the Authenticator who logs in, requires a
// device's client id to be its username, and refuses a will the client
// could not publish itself. The principal is kept for the ACL.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	b := h.b
	username := string(pk.Connect.Username)
	p, ok := b.o.Auth.Principal(username, pk.Connect.Password)
	var reason string
	switch {
	case !ok:
		reason = "bad username or password"
	case p.Role == proto.RoleDevice && (p.ID != username || cl.ID != username):
		reason = "a device's client id must be its username"
	case p.Role != proto.RoleDevice && p.Role != proto.RoleServer && p.Role != proto.RoleMonitor:
		reason = "unknown role " + p.Role
	}
	var will *mqtt.Will
	if reason == "" && cl.Properties.Will.Flag == 1 {
		w := cl.Properties.Will
		will = &w
		if !b.topics.Allowed(p, w.TopicName, true) {
			reason = "will topic not allowed: " + w.TopicName
		}
	}
	if reason != "" {
		b.refused.Add(1)
		b.log.Warn("connection refused", "reason", reason, "client", cl.ID, "username", username, "remote", cl.Net.Remote)
		return false
	}
	b.sessions.Store(cl, &session{p: p, will: will})
	b.log.Debug("client connected", "client", cl.ID, "role", p.Role, "remote", cl.Net.Remote, "clean", cl.Properties.Clean)
	return true
}

// OnSessionEstablished forgets the connection this one took over, if any:
// its subscriptions and queue now belong to cl.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if prev, ok := h.b.byID.Swap(cl.ID, cl); ok && prev.(*mqtt.Client) != cl {
		h.b.sessions.Delete(prev)
	}
}

// OnACLCheck decides subscriptions (topic is then a filter), deliveries
// and, for MQTT 5 clients, publishes.
//
// An MQTT 3.1.1 client whose publish is refused here would be
// disconnected by mochi (3.1.1 has no negative PUBACK), and a device that
// stored the message would send it again at every reconnect. So for 3.1.1
// the publish is let through to OnPublish, which acknowledges and drops
// it, as Mosquitto does. MQTT 5 clients get a PUBACK "not authorized".
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	b := h.b
	s := b.session(cl)
	if s == nil || s.kicked.Load() {
		return false
	}
	if write {
		if cl.Properties.ProtocolVersion < 5 {
			return true
		}
		if b.topics.Allowed(s.p, topic, true) {
			return true
		}
		b.drop(cl, s, topic)
		return false
	}
	return b.topics.Allowed(s.p, unshare(topic), false)
}

// OnPublish drops what the client may not publish (see OnACLCheck).
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	b := h.b
	s := b.session(cl)
	if s == nil || s.kicked.Load() || !b.topics.Allowed(s.p, pk.TopicName, true) {
		b.drop(cl, s, pk.TopicName)
		return pk, packets.CodeSuccessIgnore
	}
	return pk, nil
}

func (b *Broker) drop(cl *mqtt.Client, s *session, topic string) {
	b.dropped.Add(1)
	role := ""
	if s != nil {
		role = s.p.Role
	}
	b.log.Warn("publish refused", "client", cl.ID, "role", role, "topic", topic)
}

// OnSubscribed counts and logs the filters refused.
//
// mochi also refuses a whole SUBSCRIBE whose packet id equals that of a
// message it has in flight to the client (0x91, sent as is even to MQTT
// 3.1.1 clients): it keeps the ids of both directions in one map, though
// MQTT numbers them apart. That is not the ACL's doing and not counted;
// the client has to subscribe again.
func (h *hook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	for i, c := range codes {
		if i >= len(pk.Filters) {
			break
		}
		switch {
		case c == packets.ErrPacketIdentifierInUse.Code:
			h.b.log.Warn("subscription not made: packet id in use (mochi); the client must subscribe again",
				"client", cl.ID, "filter", pk.Filters[i].Filter, "packet_id", pk.PacketID)
		case c >= packets.ErrUnspecifiedError.Code:
			h.b.subRefused.Add(1)
			h.b.log.Warn("subscription refused", "client", cl.ID, "filter", pk.Filters[i].Filter, "code", c)
		}
	}
}

func (h *hook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	h.b.log.Debug("will published", "client", cl.ID, "topic", pk.TopicName)
	if s := h.b.session(cl); s != nil {
		s.willSent.Store(true)
	}
}

// OnDisconnect ends what Disconnect started, and forgets a session that
// ends with its connection.
//
// mochi publishes the will when reading from the connection fails; when
// Disconnect closes it while the client's packet loop is between two
// packets, the loop ends without error and the will would be lost.
func (h *hook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	b := h.b
	s := b.session(cl)
	if s != nil && s.kicked.Load() {
		if s.will != nil && !s.willSent.Load() && cl.StopCause() == kickCode {
			s.willSent.Store(true)
			b.publishWill(cl, s.will)
		}
		b.purge(cl)
		b.sessions.Delete(cl)
		return
	}
	if expire && !cl.IsTakenOver() {
		b.forget(cl)
	}
}

func (h *hook) OnClientExpired(cl *mqtt.Client) {
	h.b.forget(cl)
}

// unshare strips a shared subscription's "$share/<group>/", so that
// server replicas may share the devices' messages under the same rules.
func unshare(filter string) string {
	rest, ok := strings.CutPrefix(filter, "$share/")
	if !ok {
		return filter
	}
	if _, f, ok := strings.Cut(rest, "/"); ok {
		return f
	}
	return filter
}
