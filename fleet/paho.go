package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// PahoBus is a Bus over an MQTT connection made with paho.
type PahoBus struct {
	c    mqtt.Client
	mu   sync.Mutex
	subs map[string]mqtt.MessageHandler
}

// DialPaho connects to the broker at url ("tcp://127.0.0.1:1883") as
// clientID with a persistent session, so messages published to the server
// while it is down wait for it. Subscriptions are remade on reconnect.
func DialPaho(ctx context.Context, url, clientID, user, password string, tlsConf ...*tls.Config) (*PahoBus, error) {
	b := &PahoBus{subs: map[string]mqtt.MessageHandler{}}
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(password).
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(5 * time.Second).
		SetConnectRetry(true).SetConnectRetryInterval(500 * time.Millisecond).
		SetOrderMatters(false).SetKeepAlive(30 * time.Second).SetWriteTimeout(10 * time.Second).
		SetOnConnectHandler(func(c mqtt.Client) {
			b.mu.Lock()
			subs := make(map[string]mqtt.MessageHandler, len(b.subs))
			for f, h := range b.subs {
				subs[f] = h
			}
			b.mu.Unlock()
			// Not on paho's goroutine: subscribing waits for SUBACKs.
			go func() {
				for f, h := range subs {
					if err := subscribe(c, f, h); err != nil {
						c.Disconnect(0) // reconnecting retries it
						return
					}
				}
			}()
		})
	if len(tlsConf) > 0 && tlsConf[0] != nil {
		o.SetTLSConfig(tlsConf[0])
	}
	b.c = mqtt.NewClient(o)
	t := b.c.Connect()
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return nil, fmt.Errorf("fleet: connect to %s: %w", url, err)
		}
	case <-ctx.Done():
		b.c.Disconnect(0)
		return nil, ctx.Err()
	}
	return b, nil
}

// Publish sends at QoS 1 and waits for the broker's acknowledgement.
func (b *PahoBus) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	t := b.c.Publish(topic, 1, retained, payload)
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send starts a QoS 1 publish; wait returns once the broker has it.
func (b *PahoBus) Send(topic string, payload []byte) func(ctx context.Context) error {
	t := b.c.Publish(topic, 1, false, payload)
	return func(ctx context.Context) error {
		select {
		case <-t.Done():
			return t.Error()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Subscribe subscribes at QoS 1; handler runs on paho's goroutines.
func (b *PahoBus) Subscribe(filter string, handler func(topic string, payload []byte)) error {
	h := func(_ mqtt.Client, m mqtt.Message) { handler(m.Topic(), m.Payload()) }
	b.mu.Lock()
	b.subs[filter] = h
	b.mu.Unlock()
	return subscribe(b.c, filter, h)
}

// subscribe subscribes and checks the grant: a broker can refuse a
// subscription in its SUBACK (0x80, or 0x91 which mochi sometimes answers
// by mistake) without paho reporting an error. A refusal is retried a few
// times, then reported.
func subscribe(c mqtt.Client, filter string, h mqtt.MessageHandler) error {
	var last byte
	for try := 0; try < 5; try++ {
		t := c.Subscribe(filter, 1, h)
		if !t.WaitTimeout(10 * time.Second) {
			return fmt.Errorf("fleet: subscribe %s: no answer", filter)
		}
		if err := t.Error(); err != nil {
			return fmt.Errorf("fleet: subscribe %s: %w", filter, err)
		}
		st, ok := t.(*mqtt.SubscribeToken)
		if !ok {
			return nil
		}
		last = st.Result()[filter]
		if last <= 2 {
			return nil
		}
		time.Sleep(time.Duration(try+1) * 50 * time.Millisecond)
	}
	return fmt.Errorf("fleet: subscribe %s: refused by the broker (0x%02X)", filter, last)
}

// Close disconnects.
func (b *PahoBus) Close() { b.c.Disconnect(250) }

// Connected reports whether the connection to the broker is up (for
// /readyz).
func (b *PahoBus) Connected() bool { return b.c.IsConnectionOpen() }
