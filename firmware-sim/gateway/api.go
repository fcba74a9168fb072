package gatewaysim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"onecard/gateway"
)

func (s *Sim) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/orders", s.api(s.create))
	m.HandleFunc("GET /v1/orders/{ref}", s.api(s.query))
	m.HandleFunc("POST /v1/orders/{ref}/close", s.api(s.closeByMerchant))
	m.HandleFunc("GET /{$}", s.index)
	m.HandleFunc("GET /pay/{txn}", s.payPage)
	m.HandleFunc("POST /pay/{txn}/pay", s.payAction)
	m.HandleFunc("POST /pay/{txn}/cancel", s.payAction)
	s.mux = m
}

// ServeHTTP serves the API and the pay pages.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.log.Debug("gatewaysim: request", "method", r.Method, "uri", r.URL.RequestURI(), "remote", r.RemoteAddr)
	s.mux.ServeHTTP(w, r)
}

// answer is an API handler's reply: a status and a body to send as JSON.
type answer struct {
	status int
	body   any
}

func refuse(status int, code, format string, a ...any) answer {
	return answer{status, gateway.ErrorBody{Code: code, Message: fmt.Sprintf(format, a...)}}
}

// api authenticates a request and signs the answer: every answer, the
// refusals included, so that the client can trust it.
func (s *Sim) api(h func(r *http.Request, merchant string, body []byte) answer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reqNonce := r.Header.Get(gateway.HeaderNonce)
		if !gateway.ValidNonce(reqNonce) {
			reqNonce = ""
		}
		a := func() answer {
			body, err := io.ReadAll(io.LimitReader(r.Body, gateway.MaxBody+1))
			switch {
			case err != nil:
				return refuse(http.StatusBadRequest, "invalid_request", "cannot read the body: %v", err)
			case len(body) > gateway.MaxBody:
				return refuse(http.StatusRequestEntityTooLarge, "invalid_request", "body over %d bytes", gateway.MaxBody)
			}
			merchant, refusal := s.authenticate(r, body)
			if refusal != nil {
				s.log.Info("gatewaysim: request refused", "uri", r.URL.RequestURI(), "merchant", merchant, "why", refusal.body)
				return *refusal
			}
			return h(r, merchant, body)
		}()
		s.reply(w, reqNonce, a)
	}
}

// authenticate checks a request's merchant, signature, timestamp and
// nonce.
func (s *Sim) authenticate(r *http.Request, body []byte) (string, *answer) {
	merchant := r.Header.Get(gateway.HeaderMerchant)
	pub, ok := s.opt.Merchants[merchant]
	if !ok {
		a := refuse(http.StatusUnauthorized, "unknown_merchant", "merchant %q is not registered", merchant)
		return merchant, &a
	}
	sig, err := gateway.ReadSignature(r.Header)
	if err == nil {
		err = sig.Check(pub, gateway.RequestMessage(r.Method, r.URL.RequestURI(), merchant, sig.Timestamp, sig.Nonce, body), time.Now(), s.opt.Window)
	}
	switch {
	case errors.Is(err, gateway.ErrStale):
		a := refuse(http.StatusUnauthorized, "stale_request", "%v", err)
		return merchant, &a
	case err != nil:
		a := refuse(http.StatusUnauthorized, "bad_signature", "%v", err)
		return merchant, &a
	}
	now := time.Now()
	key := merchant + "\x00" + sig.Nonce
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, seen := s.nonces[key]; seen && now.Before(exp) {
		a := refuse(http.StatusUnauthorized, "replayed_nonce", "nonce %s was used already", sig.Nonce)
		return merchant, &a
	}
	if len(s.nonces) >= 1024 {
		for k, exp := range s.nonces {
			if !now.Before(exp) {
				delete(s.nonces, k)
			}
		}
	}
	// A timestamp may be up to a window ahead: the nonce is kept until
	// its request is stale whichever way.
	s.nonces[key] = time.Unix(sig.Timestamp, 0).Add(s.opt.Window + time.Second)
	return merchant, nil
}

// reply sends a signed answer.
func (s *Sim) reply(w http.ResponseWriter, reqNonce string, a answer) {
	body, err := json.Marshal(a.body)
	if err != nil {
		a.status, body = http.StatusInternalServerError, []byte(`{"code":"internal"}`)
	}
	ts, nonce := time.Now().Unix(), gateway.NewNonce()
	h := w.Header()
	gateway.Sign(s.key, ts, nonce, gateway.ResponseMessage(reqNonce, a.status, ts, nonce, body)).Set(h)
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(a.status)
	w.Write(body)
}

func (s *Sim) create(r *http.Request, merchant string, body []byte) answer {
	var req gateway.CreateRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return refuse(http.StatusBadRequest, "invalid_request", "body: %v", err)
	}
	now := time.Now()
	o := gateway.Order{Ref: req.Ref, AmountFen: req.AmountFen, Subject: req.Subject, NotifyURL: req.NotifyURL, ExpiresAt: req.ExpiresAt}
	if err := gateway.CheckOrder(o, now); err != nil {
		return refuse(http.StatusBadRequest, "invalid_request", "%v", err)
	}
	base := s.base(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	key := merchant + "\x00" + req.Ref
	if txn, ok := s.byRef[key]; ok {
		prev := s.orders[txn]
		s.expire(prev, now)
		switch {
		case prev.AmountFen != req.AmountFen || prev.Subject != req.Subject || prev.NotifyURL != req.NotifyURL:
			return refuse(http.StatusConflict, "ref_used", "ref %s was used for another order", req.Ref)
		case prev.State == gateway.StatePaid:
			return refuse(http.StatusConflict, "order_paid", "order %s is paid already", req.Ref)
		case prev.State == gateway.StateClosed:
			return refuse(http.StatusConflict, "order_closed", "order %s is closed", req.Ref)
		}
		return answer{http.StatusOK, orderBody(prev)} // a retry
	}
	txn := newTxn(now)
	ord := &Order{
		Merchant: merchant, Ref: req.Ref, Txn: txn, State: gateway.StatePending, AmountFen: req.AmountFen,
		Subject: req.Subject, NotifyURL: req.NotifyURL, QRContent: base + "/pay/" + txn,
		CreatedAt: now.UTC(), ExpiresAt: req.ExpiresAt.UTC(),
	}
	s.orders[txn] = ord
	s.byRef[key] = txn
	s.txns = append(s.txns, txn)
	s.log.Info("gatewaysim: order", "txn", txn, "ref", req.Ref, "merchant", merchant, "amount_fen", req.AmountFen, "expires", ord.ExpiresAt)
	return answer{http.StatusCreated, orderBody(ord)}
}

// lookup finds a merchant's order by the {ref} of the path. s.mu must be
// held.
func (s *Sim) lookup(r *http.Request, merchant string) (*Order, *answer) {
	ref := r.PathValue("ref")
	if !gateway.ValidRef(ref) {
		a := refuse(http.StatusBadRequest, "invalid_request", "ref %q", ref)
		return nil, &a
	}
	txn, ok := s.byRef[merchant+"\x00"+ref]
	if !ok {
		a := refuse(http.StatusNotFound, "not_found", "no order %s", ref)
		return nil, &a
	}
	o := s.orders[txn]
	s.expire(o, time.Now())
	return o, nil
}

func (s *Sim) query(r *http.Request, merchant string, _ []byte) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, refusal := s.lookup(r, merchant)
	if refusal != nil {
		return *refusal
	}
	return answer{http.StatusOK, orderBody(o)}
}

// closeByMerchant closes a pending order; one paid meanwhile says so.
// The merchant knows: no notification.
func (s *Sim) closeByMerchant(r *http.Request, merchant string, _ []byte) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, refusal := s.lookup(r, merchant)
	if refusal != nil {
		return *refusal
	}
	if o.State == gateway.StatePending {
		o.State, o.ClosedBy, o.ClosedAt = gateway.StateClosed, "merchant", time.Now().UTC()
		s.log.Info("gatewaysim: closed", "txn", o.Txn, "ref", o.Ref, "by", "merchant")
	}
	return answer{http.StatusOK, orderBody(o)}
}

func orderBody(o *Order) gateway.OrderBody {
	return gateway.OrderBody{Ref: o.Ref, Txn: o.Txn, State: o.State, AmountFen: o.AmountFen,
		QRContent: o.QRContent, ExpiresAt: o.ExpiresAt, PaidAt: o.PaidAt}
}

// base is the URL phones reach the gateway at.
func (s *Sim) base(r *http.Request) string {
	s.mu.Lock()
	b := s.baseURL
	s.mu.Unlock()
	if b != "" || r == nil {
		return b
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
