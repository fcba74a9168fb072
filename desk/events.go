package desk

import (
	"net/url"

	"github.com/gofiber/fiber/v2"

	"onecard/fault"
	"onecard/fleet"
	"onecard/fleet/proto"
	"onecard/web"
)

func eventFilter(c *fiber.Ctx) fleet.EventFilter {
	return fleet.EventFilter{Device: c.Query("device"), Kind: c.Query("kind"), Card: c.Query("card"), Limit: 100}
}

// events shows the latest access events and streams new ones.
func (d *Desk) events(c *fiber.Ctx) error {
	if d.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	f := eventFilter(c)
	list, err := d.Fleet.RecentEvents(c.UserContext(), f)
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"device": f.Device, "kind": f.Kind, "card": f.Card} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return render(c, fiber.StatusOK, "events", "events.title", fiber.Map{
		"Events": list, "F": f, "Kinds": proto.EventKinds, "Stream": "/devices/events/stream?" + q.Encode(),
	})
}

// liveEvent is what the stream sends: the event and its labels in the
// viewer's language.
type liveEvent struct {
	fleet.StoredEvent
	AtLocal     string `json:"at_local"`
	KindLabel   string `json:"kind_label"`
	ReasonLabel string `json:"reason_label,omitempty"`
	ClockLabel  string `json:"clock_label"`
}

// eventStream sends events as they are stored (server-sent events), with
// a comment every 15 s so proxies keep the connection open.
func (d *Desk) eventStream(c *fiber.Ctx) error {
	if d.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	f := eventFilter(c)
	lang := web.Lang(c)
	events, stop := d.Fleet.Watch()
	return web.Stream(c, events, stop, d.Stopping, func(e fleet.StoredEvent) (any, bool) {
		if !f.Match(e) {
			return nil, false
		}
		le := liveEvent{StoredEvent: e, AtLocal: e.At.In(d.loc).Format("2006-01-02 15:04:05"),
			KindLabel: web.T(lang, "evkind."+e.Kind, nil), ClockLabel: web.T(lang, "events.clock_unset", nil)}
		if e.Reason != "" {
			le.ReasonLabel = web.T(lang, "evreason."+e.Reason, nil)
		}
		return le, true
	})
}
