package web

import (
	"bufio"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Stream answers with server-sent events: for each value from events that
// payload keeps, one event whose data is the payload as JSON. A comment
// goes every 15 s so that proxies keep the connection open. The stream
// ends when events is closed, when stopping is closed (the server shuts
// down) or when the client goes away; stop is called then.
func Stream[T any](c *fiber.Ctx, events <-chan T, stop func(), stopping <-chan struct{}, payload func(T) (any, bool)) error {
	c.Set(fiber.HeaderContentType, "text/event-stream; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer stop()
		tick := time.NewTicker(15 * time.Second)
		defer tick.Stop()
		fmt.Fprint(w, ": connected\n\n")
		if w.Flush() != nil {
			return
		}
		for {
			select {
			case e, ok := <-events:
				if !ok {
					return
				}
				p, keep := payload(e)
				if !keep {
					continue
				}
				b, err := json.Marshal(p)
				if err != nil {
					return
				}
				fmt.Fprintf(w, "data: %s\n\n", b)
			case <-tick.C:
				fmt.Fprint(w, ": ping\n\n")
			case <-stopping:
				return
			}
			if w.Flush() != nil {
				return
			}
		}
	})
	return nil
}
