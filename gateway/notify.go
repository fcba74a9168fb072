package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
)

// NotifyHandler receives a gateway's notifications at an order's
// NotifyURL. It verifies each with p and hands it to apply, which must
// record it idempotently — the same notification comes more than once
// (keyed on ProviderTxn), and its AmountFen must be checked against the
// payment under Ref — and return nil only once it is committed. The
// answer is 204 then; 401 for a notification that does not verify and 400
// for one that is malformed (both logged at warn: a forged, replayed or
// damaged message); 500 when apply fails. The gateway delivers again until
// it gets a 2xx, so nothing is lost by refusing. log may be nil.
func NotifyHandler(p Provider, apply func(context.Context, Notification) error, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		n, err := p.Verify(r.Header, body)
		if err != nil {
			log.Warn("gateway: notification refused", "remote", r.RemoteAddr, "err", err)
			code := http.StatusUnauthorized
			if errors.Is(err, ErrMalformed) {
				code = http.StatusBadRequest
			}
			http.Error(w, "notification refused", code)
			return
		}
		if err := apply(r.Context(), n); err != nil {
			log.Error("gateway: notification not applied", "ref", n.Ref, "txn", n.ProviderTxn, "state", n.State, "err", err)
			http.Error(w, "not recorded, send it again", http.StatusInternalServerError)
			return
		}
		log.Info("gateway: notification", "ref", n.Ref, "txn", n.ProviderTxn, "state", n.State, "amount_fen", n.AmountFen)
		w.WriteHeader(http.StatusNoContent)
	})
}
