package gatewaysim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"onecard/gateway"
)

// notification is one notification on its way.
type notification struct {
	url             string
	txn, ref, state string
	body            []byte
	signed          http.Header // signed when the order changed
	twice           bool
	late            time.Duration
}

// notify sends o's notification, in the background. s.mu must be held.
func (s *Sim) notify(o Order) {
	if s.closed {
		return
	}
	body, err := json.Marshal(gateway.NotifyBody{Merchant: o.Merchant, Ref: o.Ref, Txn: o.Txn, State: o.State, AmountFen: o.AmountFen, PaidAt: o.PaidAt})
	if err != nil {
		s.log.Error("gatewaysim: notification", "txn", o.Txn, "err", err)
		return
	}
	n := &notification{url: o.NotifyURL, txn: o.Txn, ref: o.Ref, state: o.State, body: body,
		signed: s.sign(body), twice: s.twice, late: s.late}
	s.delivering++
	// Stop sets s.closed under s.mu before it waits: no Add after Wait.
	s.wg.Go(func() { s.deliver(n) })
}

// sign returns the headers of body signed now.
func (s *Sim) sign(body []byte) http.Header {
	h := http.Header{}
	ts, nonce := time.Now().Unix(), gateway.NewNonce()
	gateway.Sign(s.key, ts, nonce, gateway.NotificationMessage(ts, nonce, body)).Set(h)
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "onecard-gatewaysim/1")
	return h
}

// deliver POSTs n until a 2xx, the last attempt, or Stop.
func (s *Sim) deliver(n *notification) {
	defer func() {
		s.mu.Lock()
		s.delivering--
		s.mu.Unlock()
	}()
	kind := "first"
	if n.late > 0 {
		kind = "late"
		if !s.sleep(n.late) {
			return
		}
	}
	hdr := n.signed
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			kind, hdr = "retry", s.sign(n.body)
		}
		s.mu.Lock()
		bad := s.badSig
		s.mu.Unlock()
		if bad {
			hdr = damaged(hdr)
		}
		d := Delivery{Txn: n.txn, Ref: n.ref, State: n.state, Attempt: attempt, Kind: kind, BadSig: bad}
		d.Status, d.Err = s.post(n, hdr)
		s.record(d)
		if d.Status/100 == 2 {
			if n.twice {
				d.Kind = "duplicate"
				d.Status, d.Err = s.post(n, hdr)
				s.record(d)
			}
			return
		}
		if attempt >= s.opt.Attempts {
			s.log.Warn("gatewaysim: notification given up", "txn", n.txn, "url", n.url, "attempts", attempt)
			return
		}
		if !s.sleep(min(s.opt.RetryBase<<min(attempt-1, 20), s.opt.RetryMax)) {
			return
		}
	}
}

// post sends one delivery and returns the receiver's status, or why there
// is none.
func (s *Sim) post(n *notification, hdr http.Header) (int, string) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, n.url, bytes.NewReader(n.body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header = hdr.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, ""
}

func (s *Sim) record(d Delivery) {
	d.At = time.Now().UTC()
	s.log.Info("gatewaysim: notification", "txn", d.Txn, "state", d.State, "attempt", d.Attempt, "kind", d.Kind,
		"badsig", d.BadSig, "status", d.Status, "err", d.Err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.deliveries) >= deliveriesKept {
		s.deliveries = append(s.deliveries[:0], s.deliveries[1:]...)
	}
	s.deliveries = append(s.deliveries, d)
}

// sleep waits d, or until Stop; it reports whether d passed.
func (s *Sim) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// damaged returns hdr with one bit of its signature flipped: still 64
// bytes of base64, no longer the gateway's signature.
func damaged(hdr http.Header) http.Header {
	h := hdr.Clone()
	sig, err := base64.StdEncoding.DecodeString(h.Get(gateway.HeaderSignature))
	if err != nil || len(sig) == 0 {
		return h
	}
	sig[0] ^= 0x01
	h.Set(gateway.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return h
}
