package web

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"onecard/auth"
)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-ID"

// RequestID returns the request's id.
func RequestID(c *fiber.Ctx) string {
	s, _ := c.Locals("request_id").(string)
	return s
}

// Metrics are the HTTP metrics, registered on a registry of the app's own.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the HTTP metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onecard_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "onecard_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// Observe is the outermost middleware: it gives each request an id (or
// keeps a sane one from the caller), runs it, maps any error through the
// app's error handler, then logs it and counts it under its route
// template, so /units/3-2-1801 and /units/1-1-101 are one series.
func Observe(m *Metrics, log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		id := c.Get(RequestIDHeader)
		if len(id) == 0 || len(id) > 64 || !printable(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Locals("request_id", id)
		c.Set(RequestIDHeader, id)
		c.SetUserContext(auth.WithRequestID(c.UserContext(), id))
		err := c.Next()
		if err != nil {
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		status := c.Response().StatusCode()
		route := c.Route().Path
		if status == fiber.StatusNotFound && route == "/" && c.Path() != "/" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		m.requests.WithLabelValues(c.Method(), route, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(c.Method(), route).Observe(elapsed.Seconds())
		attrs := []any{"request_id", id, "method", c.Method(), "path", c.Path(), "route", route,
			"status", status, "duration_ms", float64(elapsed.Microseconds()) / 1000, "remote", c.IP()}
		if a, ok := ActorOf(c); ok {
			attrs = append(attrs, "actor", a.Name)
		}
		log.Info("http", attrs...)
		return nil
	}
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Page returns template data with what every page needs: the language,
// the caller, the CSRF token and the title.
func Page(c *fiber.Ctx, titleKey string, data fiber.Map) fiber.Map {
	if data == nil {
		data = fiber.Map{}
	}
	a, ok := ActorOf(c)
	data["L"] = Lang(c)
	data["Title"] = T(Lang(c), titleKey, nil)
	data["Path"] = c.Path()
	data["RequestID"] = RequestID(c)
	if ok {
		data["Actor"] = a
		data["CSRF"] = a.CSRF
	}
	return data
}
