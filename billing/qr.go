package billing

import (
	"context"
	"fmt"
	"time"

	"onecard/auth"
	"onecard/fault"
	"onecard/gateway"
	"onecard/store"
)

// QRExpiry is how long an owner has to pay a QR order.
const QRExpiry = 5 * time.Minute

// payQR records a QR payment as sent, then asks the gateway for an order;
// the payment settles when the gateway's signed notification says paid
// (or the resolver's query does).
func (s *Service) payQR(ctx context.Context, p Payment) (Payment, error) {
	o := gateway.Order{Ref: p.Ref, AmountFen: p.AmountFen, Subject: fmt.Sprintf("%s %s", s.site.Name, p.UnitCode),
		NotifyURL: s.notifyURL, ExpiresAt: time.Now().Add(QRExpiry)} // the gateway keeps wall-clock time
	cr, err := s.gateway.Create(ctx, o)
	if err != nil {
		// No order: nothing can be paid; the payment ends declined.
		out, rerr := s.record(context.WithoutCancel(ctx), p.ID, TerminalResult{State: "declined", Reason: "gateway: " + err.Error()}, operator{p.OpKind, p.OpID, p.OpName})
		if rerr != nil {
			return p, rerr
		}
		return out, fault.Conflict("method", "gateway_unavailable")
	}
	if _, err := s.db.Exec(ctx, "UPDATE payments SET provider_txn = ?, qr_content = ?, updated_at = ? WHERE id = ?",
		cr.ProviderTxn, cr.QRContent, s.now(), p.ID); err != nil {
		return p, err
	}
	p.ProviderTxn, p.QRContent = cr.ProviderTxn, cr.QRContent
	return p, ErrOutcomeUnknown
}

// OnGatewayNotification applies a gateway's verified notification: paid
// settles the payment (once: a second notification of the same
// transaction changes nothing), closed ends it. The amount must be the
// payment's.
func (s *Service) OnGatewayNotification(ctx context.Context, n gateway.Notification) error {
	var p Payment
	err := s.db.Get(ctx, &p, "SELECT "+paymentCols+paymentFrom+" WHERE p.site_id = ? AND p.ref = ? AND p.method = 'qr'", s.site.ID, n.Ref)
	if store.IsNoRows(err) {
		return fault.NotFound("payment_not_found")
	}
	if err != nil {
		return err
	}
	if n.AmountFen != p.AmountFen || (p.ProviderTxn != "" && n.ProviderTxn != p.ProviderTxn) {
		s.log.Error("billing: gateway notification disagrees with the payment", "ref", n.Ref, "amount", n.AmountFen, "txn", n.ProviderTxn)
		return fault.Conflict("notification", "notification_mismatch")
	}
	ctx = auth.WithActor(ctx, auth.Actor{Kind: "system", Name: "gateway", Role: auth.Admin})
	res := TerminalResult{State: "declined", Reason: "closed at the gateway"}
	if n.State == gateway.StatePaid {
		res = TerminalResult{State: "approved", AuthCode: n.ProviderTxn}
	}
	_, err = s.record(ctx, p.ID, res, operator{p.OpKind, p.OpID, p.OpName})
	return err
}

// resolveQR asks the gateway about a QR payment left waiting; an order
// past its time is closed (paid wins if the owner paid meanwhile).
func (s *Service) resolveQR(ctx context.Context, p Payment) (TerminalResult, bool) {
	st, err := s.gateway.Query(ctx, p.Ref)
	if err != nil {
		return TerminalResult{}, false
	}
	if st.State == gateway.StatePending && s.now().Sub(p.CreatedAt) > QRExpiry+time.Minute {
		if st, err = s.gateway.Close(ctx, p.Ref); err != nil {
			return TerminalResult{}, false
		}
	}
	switch st.State {
	case gateway.StatePaid:
		return TerminalResult{State: "approved", AuthCode: st.ProviderTxn}, true
	case gateway.StateClosed, gateway.StateNotFound:
		return TerminalResult{State: "declined", Reason: "qr " + st.State}, true
	}
	return TerminalResult{}, false
}

// CancelQR closes a QR payment the owner walked away from. If the gateway
// says it was paid after all, it settles.
func (s *Service) CancelQR(ctx context.Context, id int64) (Payment, error) {
	p, err := s.payment(ctx, s.db, id)
	if err != nil {
		return p, err
	}
	if p.Method != "qr" || s.gateway == nil {
		return p, fault.Invalid("payment", "payment_not_qr")
	}
	st, err := s.gateway.Close(ctx, p.Ref)
	if err != nil {
		return p, fault.Conflict("method", "gateway_unavailable")
	}
	res := TerminalResult{State: "declined", Reason: "cancelled"}
	if st.State == gateway.StatePaid {
		res = TerminalResult{State: "approved", AuthCode: st.ProviderTxn}
	}
	return s.record(ctx, p.ID, res, operator{p.OpKind, p.OpID, p.OpName})
}
