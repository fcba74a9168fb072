package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"onecard/cards"
	"os"
	"path/filepath"
	"strings"
	"time"

	"onecard/devices/broker"
	"onecard/fleet"
	"onecard/fleet/proto"
	"onecard/passes"
	"onecard/store"
)

func randomSecret() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// fleetRuntime is the broker connection and fleet service of a server.
type fleetRuntime struct {
	Service *fleet.Service
	Bus     *fleet.PahoBus
	Broker  *broker.Broker // nil with an external broker
	URL     string
	// MonitorSecret is the read-only monitor's password (embedded broker).
	MonitorSecret string
}

// startFleet starts the embedded broker (unless --mqtt names an external
// one), connects onecard to it and runs the fleet service.
func startFleet(ctx context.Context, c *config, db *store.DB, siteID int64, siteCode string, log *slog.Logger, gatePasses *passes.Service) (*fleetRuntime, error) {
	rt := &fleetRuntime{}
	serverSecret := randomSecret()
	user := fleet.ServerUser
	if c.MQTT != "" {
		user, serverSecret = c.MQTTUser, c.MQTTPassword
	}
	if c.MQTT == "" {
		rt.MonitorSecret = c.MonitorPassword
		if rt.MonitorSecret == "" {
			rt.MonitorSecret = randomSecret()
		}
	}
	svc, err := fleet.New(db, siteID, siteCode, fleet.Options{ServerSecret: serverSecret, MonitorSecret: rt.MonitorSecret,
		TimeZone: c.TimeZone, Log: log.With("part", "fleet"),
		Schedules: map[string][]proto.Segment{cards.WorkHours: cards.WorkHoursSegments}, Holidays: holidays(c.Holidays), PassKeys: gatePasses.PublicKeys()})
	if err != nil {
		return nil, err
	}
	svc.HandleEvents(gatePasses.GateEvents(svc, log.With("part", "gate")), passes.GateEventKinds...)
	rt.Service = svc
	rt.URL = c.MQTT
	if c.MQTT == "" {
		var tlsConf *tls.Config
		if c.MQTTTLSCert != "" || c.MQTTTLSKey != "" {
			cert, err := tls.LoadX509KeyPair(c.MQTTTLSCert, c.MQTTTLSKey)
			if err != nil {
				return nil, fmt.Errorf("mqtt TLS certificate: %w", err)
			}
			tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		br, err := broker.New(broker.Options{Addr: c.MQTTListen, TLS: tlsConf, Site: siteCode, Auth: svc, Log: log.With("part", "broker")})
		if err != nil {
			return nil, err
		}
		if err := br.Start(); err != nil {
			if !c.mqttListenFallback {
				return nil, fmt.Errorf("mqtt broker on %s: %w (choose another with --mqtt-listen)", c.MQTTListen, err)
			}
			// The demo makes do with any free port (a system Mosquitto
			// often holds 1883).
			log.Info("mqtt port taken, using a free one", "wanted", c.MQTTListen, "err", err)
			if br, err = broker.New(broker.Options{Addr: "127.0.0.1:0", TLS: tlsConf, Site: siteCode, Auth: svc, Log: log.With("part", "broker")}); err != nil {
				return nil, err
			}
			if err := br.Start(); err != nil {
				return nil, fmt.Errorf("mqtt broker: %w", err)
			}
		}
		svc.OnDisable(br.Disconnect)
		rt.Broker = br
		rt.URL = "tcp://" + br.Addr()
		if tlsConf != nil {
			rt.URL = "tls://" + br.Addr()
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	bus, err := fleet.DialPaho(dctx, rt.URL, "onecard.server."+siteCode, user, serverSecret, rt.clientTLS(c))
	if err != nil {
		rt.close()
		return nil, err
	}
	rt.Bus = bus
	go func() {
		if err := svc.Run(ctx, bus); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("fleet service stopped", "err", err)
		}
	}()
	log.Info("reader fleet connected", "broker", rt.URL, "embedded", rt.Broker != nil)
	return rt, nil
}

func (rt *fleetRuntime) close() {
	if rt.Bus != nil {
		rt.Bus.Close()
	}
	if rt.Broker != nil {
		// mochi's Close can deadlock when a client connects or leaves at
		// the same moment (mochi-mqtt/server#488): never let it hold up
		// the shutdown.
		done := make(chan struct{})
		go func() { rt.Broker.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			slog.Warn("mqtt broker did not close in 5 s; exiting anyway")
		}
	}
}

// demoReaders are the demo estate's doors: the main gates, each building's
// door and the car-park barrier.
var demoReaders = []fleet.NewDevice{
	{Code: "gate-1", Kind: "turnstile", Name: "南门闸机 1", Zones: []string{"gate"}},
	{Code: "gate-2", Kind: "turnstile", Name: "南门闸机 2", Zones: []string{"gate"}},
	{Code: "b1-door", Kind: "reader", Name: "1号楼门禁", Zones: []string{"b1"}},
	{Code: "b2-door", Kind: "reader", Name: "2号楼门禁", Zones: []string{"b2"}},
	{Code: "b3-door", Kind: "reader", Name: "3号楼门禁", Zones: []string{"b3"}},
	{Code: "carpark", Kind: "reader", Name: "停车场道闸", Zones: []string{"carpark"}},
	{Code: "lobby-1-reader", Kind: "kiosk-reader", Name: "1号楼大堂自助机读卡器", Zones: []string{"gate"}},
	{Code: "gate-terminal-1", Kind: "gate-terminal", Name: "南门放行终端", Zones: []string{"gate"}},
}

// demoDeviceSecrets registers the demo's readers once and keeps their
// secrets in DATA_DIR/readers/secrets (mode 0600), so the simulated
// readers can log in again on the next run.
func demoDeviceSecrets(ctx context.Context, svc *fleet.Service, dataDir string) (map[string]string, error) {
	dir := filepath.Join(dataDir, "readers")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "secrets")
	secrets := map[string]string{}
	if b, err := os.ReadFile(path); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if id, secret, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
				secrets[id] = secret
			}
		}
	}
	var lines []string
	for _, d := range demoReaders {
		if s, ok := secrets[d.Code]; ok {
			lines = append(lines, d.Code+" "+s)
			continue
		}
		_, secret, err := svc.AddDevice(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("demo reader %s: %w (remove the data directory to start the demo afresh)", d.Code, err)
		}
		secrets[d.Code] = secret
		lines = append(lines, d.Code+" "+secret)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	return secrets, nil
}

// brokerStats returns the embedded broker's counters, nil with an external
// broker.
func (rt *fleetRuntime) brokerStats() func() broker.Stats {
	if rt.Broker == nil {
		return nil
	}
	return rt.Broker.Stats
}

// clientTLS is how onecard itself connects to its embedded broker over
// TLS: trusting the broker's own certificate (it is the same process).
func (rt *fleetRuntime) clientTLS(c *config) *tls.Config {
	if c.MQTT != "" || c.MQTTTLSCert == "" {
		return nil
	}
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(c.MQTTTLSCert); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ServerName: hostOf(rt.Broker.Addr())}
}

// holidays splits the --holidays list (the fleet checks each date).
func holidays(s string) []string {
	var out []string
	for _, d := range strings.Split(s, ",") {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	return out
}
