package passes

import (
	"context"
	"log/slog"
	"slices"

	"onecard/fleet"
	"onecard/fleet/proto"
	"onecard/store"
)

// GateEventKinds are the fleet events of gate terminals.
var GateEventKinds = []string{"pass_scan", "pass_release", "pass_mismatch"}

// GateEvents hands the gate terminals' events (fleet.Service.HandleEvents,
// kinds pass_scan, pass_release, pass_mismatch) to p in the
// transaction that stores them, and answers each scan with its verdict at
// once: a scan changes nothing, so the verdict need not wait for the
// commit (the guard at the gate waits for it). Should the transaction
// fail, the terminal sends the scan again and gets a second verdict for
// it, which it ignores; the check is recorded when the event is stored.
func (p *Service) GateEvents(fl *fleet.Service, log *slog.Logger) fleet.EventHandler {
	return func(ctx context.Context, tx *store.Tx, e fleet.StoredEvent) error {
		if e.Replay {
			if e.Kind != "pass_scan" {
				return nil // recorded the first time
			}
			// The terminal missed the verdict: decide again, record nothing.
			v, err := p.verdict(ctx, tx, e.Data, e.Zone)
			if err != nil {
				return err
			}
			go p.sendVerdict(fl, log, e, toProto(v, uint64(e.Seq)))
			return nil
		}
		v, err := p.OnGateEvent(ctx, tx, GateEvent{Device: e.Device, Seq: e.Seq, Kind: e.Kind, Gate: e.Zone, Data: e.Data,
			Mover: e.Mover, Plate: e.Plate, Offline: e.Offline})
		if err != nil || v == nil {
			return err
		}
		go p.sendVerdict(fl, log, e, toProto(*v, uint64(e.Seq)))
		return nil
	}
}

func (p *Service) sendVerdict(fl *fleet.Service, log *slog.Logger, e fleet.StoredEvent, v proto.Verdict) {
	if err := fl.SendVerdict(context.Background(), e.Device, v); err != nil {
		log.Warn("gate verdict", "device", e.Device, "scan", e.Seq, "err", err)
	}
}

// toProto is a verdict as a gate terminal reads it (docs/mqtt.md).
func toProto(v Verdict, scan uint64) proto.Verdict {
	out := proto.Verdict{Scan: scan, OK: v.OK, Reason: v.Reason}
	if !slices.Contains(proto.VerdictReasons, out.Reason) && !out.OK {
		out.Reason = "malformed"
	}
	if p := v.Pass; p != nil {
		out.Pass, out.Unit, out.Plate, out.Until = p.Number, p.Unit, p.Plate, p.ValidUntil.UnixMilli()
		out.Items = trunc(p.ItemsText(), 2000)
		if p.ArrearsFen > 0 {
			out.Warn = "该户有欠费，已由 " + p.ApprovedBy + " 批准放行"
		}
	}
	return out
}
