// Package server assembles onecard's HTTP app: middleware, health and
// metrics endpoints, the JSON API and the desk screens.
package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/limiter"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"onecard/api"
	"onecard/auth"
	"onecard/billing"
	"onecard/cards"
	"onecard/desk"
	"onecard/devices/broker"
	"onecard/estate"
	"onecard/fleet"
	"onecard/gateway"
	"onecard/kiosk"
	"onecard/mailroom"
	"onecard/passes"
	"onecard/printing"
	"onecard/store"
	"onecard/terminal"
	"onecard/web"
)

// Deps are what the app serves.
type Deps struct {
	DB     *store.DB
	Auth   *auth.Service
	Estate *estate.Service
	Log    *slog.Logger
	// SecureCookies marks cookies Secure (set when served over TLS).
	SecureCookies bool
	// LoginLimit caps login attempts per client address per minute
	// (0: 30).
	LoginLimit int
	// Encoder is the desk's card encoder, if one is configured.
	Encoder *cards.Station
	// Fleet is the reader fleet; BrokerUp says whether its broker
	// connection is up (both may be nil in tests of other parts).
	Fleet    *fleet.Service
	BrokerUp func() bool
	// BrokerStats are the embedded broker's counters, if it runs.
	BrokerStats func() broker.Stats
	// Stopping is closed when shutdown begins: live streams end.
	Stopping <-chan struct{}
	// Billing is the books; Printer and Terminal the desk's receipt
	// printer and payment terminal (nil when none is configured).
	Billing  *billing.Service
	Printer  *printing.Printer
	Terminal *terminal.Terminal
	// Printers and Terminals are the kiosks' devices by name (a kiosk's
	// registration names them).
	Printers  map[string]*printing.Printer
	Terminals map[string]*terminal.Terminal
	// Passes are the move-out gate passes (nil in tests of other parts).
	Passes *passes.Service
	// Mail is the mail room (nil: none); Scans the desk scanner's codes.
	Mail  *mailroom.Service
	Scans func() (<-chan string, func())
	// Cards is the one-card register (nil in tests of other parts).
	Cards *cards.Register
	// Demo stands in for touching the demo's simulated hardware (nil
	// outside the demo).
	Demo desk.Demo
	// Kiosks are the lobby kiosks (nil: no kiosk pages).
	Kiosks *kiosk.Service
	// Gateway takes QR payments; its notifications come to
	// /gateway/notify (nil: none).
	Gateway gateway.Provider
}

// App is the assembled HTTP app and its route registry.
type App struct {
	*fiber.App
	Registry *web.Registry
	Metrics  *prometheus.Registry
}

// New builds the app.
func New(d Deps) (*App, error) {
	loc, err := time.LoadLocation(d.Estate.Site().TimeZone)
	if err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.LoginLimit == 0 {
		d.LoginLimit = 30
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(d.DB.DB.DB, "onecard"))
	registerFleetMetrics(reg, d)
	app := fiber.New(fiber.Config{
		AppName:               "onecard",
		Views:                 desk.Views(loc, d.Estate.Site().Name),
		ViewsLayout:           "layouts/main",
		ErrorHandler:          web.ErrorHandler,
		BodyLimit:             desk.MaxImportBytes + 1<<20,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           120 * time.Second,
		DisableStartupMessage: true,
		// Strings from the request (parameters, form values, cookies) are
		// copies: services keep some beyond the request (a resync's device,
		// a kiosk's credential in a cache, what the demo hands its
		// simulators), and by default fiber's point into a buffer reused
		// for the next request.
		Immutable: true,
	})
	routes := &web.Registry{}
	guard := &web.Guard{Auth: d.Auth, Reg: routes, SecureCookies: d.SecureCookies}
	app.Use(web.Observe(web.NewMetrics(reg), d.Log))
	app.Use(recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: func(c *fiber.Ctx, e any) {
		d.Log.Error("panic", "request_id", web.RequestID(c), "panic", e)
	}}))
	app.Use(securityHeaders)
	loginLimiter := limiter.New(limiter.Config{
		Next:       func(c *fiber.Ctx) bool { return c.Method() != fiber.MethodPost },
		Max:        d.LoginLimit,
		Expiration: time.Minute,
		LimitReached: func(c *fiber.Ctx) error {
			return fiber.NewError(fiber.StatusTooManyRequests)
		},
	})
	app.Use("/login", loginLimiter)
	app.Use("/api/v1/login", loginLimiter)

	root := guard.Screens(app, "")
	root.Public("GET", "/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	root.Public("GET", "/readyz", func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
		defer cancel()
		body := fiber.Map{"status": "ready", "database": "ok"}
		status := fiber.StatusOK
		if err := d.DB.PingContext(ctx); err != nil {
			d.Log.Warn("readyz: database unreachable", "err", err)
			body["status"], body["database"], status = "unavailable", "unreachable", fiber.StatusServiceUnavailable
		}
		if d.BrokerUp != nil {
			body["broker"] = "ok"
			if !d.BrokerUp() {
				body["status"], body["broker"], status = "unavailable", "unreachable", fiber.StatusServiceUnavailable
			}
		}
		return c.Status(status).JSON(body)
	})
	root.Public("GET", "/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))

	if d.Gateway != nil && d.Billing != nil {
		// Signed by the gateway, checked by gateway.Verify: public.
		root.Public("POST", "/gateway/notify", adaptor.HTTPHandler(gateway.NotifyHandler(d.Gateway, d.Billing.OnGatewayNotification, d.Log)))
	}
	if d.Kiosks != nil && d.Billing != nil {
		ks := &kiosk.Screens{Kiosks: d.Kiosks, Billing: d.Billing, Guard: guard, Site: d.Estate.Site().Name, Stopping: d.Stopping,
			QR: d.Gateway != nil, Mail: d.Mail}
		ks.PaperOut = func(ctx context.Context, name string) bool {
			p := d.Printer
			if name != "" {
				p = d.Printers[name]
			}
			return p != nil && p.PaperOut(ctx)
		}
		if d.Fleet != nil && d.Cards != nil {
			ks.Taps = d.Fleet.Watch
			ks.CardOf = func(ctx context.Context, uid string) (kiosk.CardInfo, error) {
				c, err := d.Cards.ByUID(ctx, uid)
				if err != nil {
					return kiosk.CardInfo{}, err
				}
				info := kiosk.CardInfo{State: c.State, ValidUntil: c.ValidUntil}
				if c.Unit != nil {
					info.Unit = *c.Unit
				}
				return info, nil
			}
		}
		ks.Register(app)
	}
	(&api.API{Auth: d.Auth, Estate: d.Estate, Guard: guard, Encoder: d.Encoder, Fleet: d.Fleet, Billing: d.Billing, Cards: d.Cards}).Register(app)
	(&desk.Desk{Auth: d.Auth, Estate: d.Estate, Guard: guard, Encoder: d.Encoder, Fleet: d.Fleet, Stopping: d.Stopping,
		Billing: d.Billing, Printer: d.Printer, Terminal: d.Terminal, Printers: d.Printers, Terminals: d.Terminals, Passes: d.Passes, Cards: d.Cards, Demo: d.Demo, Kiosks: d.Kiosks,
		Mail: d.Mail, Scans: d.Scans}).Register(app, loc)
	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
	return &App{App: app, Registry: routes, Metrics: reg}, nil
}

func securityHeaders(c *fiber.Ctx) error {
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "same-origin")
	c.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	return c.Next()
}

// registerFleetMetrics exports the fleet's and the embedded broker's
// counters: what was rejected, published, stored twice, queued.
func registerFleetMetrics(reg *prometheus.Registry, d Deps) {
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	if fl := d.Fleet; fl != nil {
		st := fl.Stats()
		counter("onecard_fleet_rejected_total", "Device messages rejected (malformed, unknown version, impossible acknowledgements).", func() float64 { return float64(st.Rejected.Load()) })
		counter("onecard_fleet_published_total", "Outbox messages published.", func() float64 { return float64(st.Published.Load()) })
		counter("onecard_fleet_events_total", "Access events stored.", func() float64 { return float64(st.Events.Load()) })
		counter("onecard_fleet_event_duplicates_total", "Access events received again (replays), not stored twice.", func() float64 { return float64(st.Duplicates.Load()) })
		counter("onecard_fleet_snapshots_cached_total", "Whitelist snapshots sent from memory.", func() float64 { return float64(st.SnapshotsCached.Load()) })
		counter("onecard_fleet_snapshots_read_total", "Whitelist snapshots read from the database (a zone not yet in memory).", func() float64 { return float64(st.SnapshotsRead.Load()) })
	}
	if bs := d.BrokerStats; bs != nil {
		counter("onecard_mqtt_connects_refused_total", "Broker logins refused.", func() float64 { return float64(bs().ConnectsRefused) })
		counter("onecard_mqtt_publishes_dropped_total", "Publishes the ACL refused.", func() float64 { return float64(bs().PublishesDropped) })
		counter("onecard_mqtt_subscriptions_refused_total", "Subscriptions the ACL refused.", func() float64 { return float64(bs().SubscriptionsRefused) })
		counter("onecard_mqtt_queue_full_total", "Messages not queued: a session's queue was full.", func() float64 { return float64(bs().QueueFull) })
		counter("onecard_mqtt_slow_dropped_total", "Messages dropped: a client read too slowly.", func() float64 { return float64(bs().SlowDropped) })
		gauge("onecard_mqtt_clients_connected", "Clients connected now.", func() float64 { return float64(bs().Connected) })
		gauge("onecard_mqtt_sessions", "Sessions held, connected or not.", func() float64 { return float64(bs().Sessions) })
		gauge("onecard_mqtt_queued", "QoS 1 messages held for clients.", func() float64 { return float64(bs().Queued) })
	}
}
