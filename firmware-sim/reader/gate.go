package reader

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"onecard/fleet/proto"
	"onecard/passes/passcode"
)

// DefaultVerdictWait is how long ScanPass waits for the server's verdict
// unless Options say otherwise ("a few seconds", docs/mqtt.md).
const DefaultVerdictWait = 3 * time.Second

// ReasonNoKeys is the reason of a verdict a terminal gives offline when its
// configuration carries no pass keys: it cannot check a genuine-looking
// code at all. It is the terminal's own word, never sent by the server.
const ReasonNoKeys = "offline_no_keys"

// OfflineWarn is the warning of a pass accepted offline: the signature
// proves the desk issued it, not that it still stands.
const OfflineWarn = "离线核验：无法确认是否已注销或已在他处放行 / checked offline: cannot tell whether cancelled or used at another gate"

// Limits of what a gate terminal remembers.
const (
	maxReleased = 1024 // passes released here, kept until their window ends
	maxVerdicts = 32   // last verdicts, by text, for ReleasePass
)

// PassVerdict is what a gate terminal shows for a scanned pass: the
// server's verdict, or its own (Offline) when none came in time. An
// offline verdict's Reason is one of proto.VerdictReasons except cancelled
// (which only the server knows), or ReasonNoKeys; Scan is the pass_scan's
// seq either way.
type PassVerdict struct {
	proto.Verdict
	// Offline: the terminal decided with the site's public keys alone.
	Offline bool
}

// releasedPass is a pass the terminal released, persisted: by its pass
// number, or by its text (trimmed, upper case) when the number was not
// known.
type releasedPass struct {
	Pass  string `json:"pass"`
	Until int64  `json:"until,omitempty"` // Unix ms, the end of its window, when known
}

// verdictMemo is the last verdict shown for a text.
type verdictMemo struct {
	text    string // trimmed, upper case
	pass    string
	until   int64
	offline bool
}

// ScanPass is a pass code (or a pass number typed by hand) read at a gate
// terminal (docs/mqtt.md, Gate terminals): it queues a pass_scan event
// like any other, with the text as read, and waits up to
// Options.VerdictWait for the server's verdict on that scan. With no
// verdict in time, or at once when not connected, it checks the code
// itself: signature with the configuration's pass_keys, window with
// passcode.DefaultSkew on its own clock, gate = its zone, and the passes it
// released itself. A scan consumes nothing. An error means the text cannot
// be an event, or ctx ended (the scan stays queued).
func (r *Reader) ScanPass(ctx context.Context, text string) (PassVerdict, error) {
	ev := proto.Event{Kind: "pass_scan", Data: text, Zone: r.opts.Zone}
	if err := r.checkEvent(ev); err != nil {
		return PassVerdict{}, err
	}
	ch := make(chan proto.Verdict, 1)
	r.mu.Lock()
	seq := r.queueLocked(ev)
	online := r.online
	if online {
		r.scanWait[seq] = ch
	}
	r.mu.Unlock()
	r.kick(r.evtKick)
	r.log.Debug("pass scanned", "seq", seq, "online", online)

	if online {
		t := time.NewTimer(r.opts.VerdictWait)
		defer t.Stop()
		select {
		case v := <-ch:
			return r.shown(text, PassVerdict{Verdict: v}), nil
		case <-ctx.Done():
			r.mu.Lock()
			delete(r.scanWait, seq)
			r.mu.Unlock()
			return PassVerdict{}, ctx.Err()
		case <-t.C:
		}
	}
	r.mu.Lock()
	delete(r.scanWait, seq)
	select {
	case v := <-ch: // came as the wait ended
		r.mu.Unlock()
		return r.shown(text, PassVerdict{Verdict: v}), nil
	default:
	}
	now, _ := r.nowLocked()
	v := r.checkPassLocked(text, seq, now)
	r.mu.Unlock()
	r.log.Info("pass checked offline", "seq", seq, "ok", v.OK, "reason", v.Reason, "pass", v.Pass)
	return r.shown(text, v), nil
}

// verdictLocked hands the server's verdict to the ScanPass waiting for it;
// one for a scan nobody waits for (another scan, or one already decided)
// is ignored.
func (r *Reader) verdictLocked(v proto.Verdict) {
	ch, ok := r.scanWait[v.Scan]
	if !ok {
		r.log.Info("verdict for a scan not awaited: ignored", "scan", v.Scan)
		return
	}
	delete(r.scanWait, v.Scan)
	ch <- v // buffered, and the only send
}

// shown remembers the verdict on screen, for the release that may follow.
func (r *Reader) shown(text string, v PassVerdict) PassVerdict {
	m := verdictMemo{text: normText(text), pass: v.Pass, until: v.Until, offline: v.Offline}
	r.mu.Lock()
	r.verdicts = slices.DeleteFunc(r.verdicts, func(x verdictMemo) bool { return x.text == m.text })
	r.verdicts = append(r.verdicts, m)
	if len(r.verdicts) > maxVerdicts {
		r.verdicts = slices.Delete(r.verdicts, 0, len(r.verdicts)-maxVerdicts)
	}
	r.mu.Unlock()
	return v
}

// checkPassLocked is the offline check of docs/passcode.md §4, then the
// passes released here (a photocopy of one, or the same pass again).
func (r *Reader) checkPassLocked(text string, seq uint64, now time.Time) PassVerdict {
	v := PassVerdict{Verdict: proto.Verdict{Scan: seq}, Offline: true}
	c, err := passcode.Parse(text, r.passKeys)
	if err != nil {
		v.Reason = parseReason(err, r.passKeys.Len() == 0)
		return v
	}
	v.Pass, v.Until = c.Pass, c.NotAfter.UnixMilli()
	if err := c.Check(now, passcode.DefaultSkew); err != nil {
		v.Reason = "expired"
		if errors.Is(err, passcode.ErrNotYetValid) {
			v.Reason = "not_yet_valid"
		}
		return v
	}
	switch {
	case c.CheckGate(r.opts.Zone) != nil:
		v.Reason = "wrong_gate"
	case r.releasedLocked(c.Pass, text):
		v.Reason = "used"
	default:
		v.OK, v.Warn = true, OfflineWarn
	}
	return v
}

// parseReason maps a passcode.Parse error to the verdict's reason word.
func parseReason(err error, noKeys bool) string {
	switch {
	case errors.Is(err, passcode.ErrUnknownKey) && noKeys:
		return ReasonNoKeys
	case errors.Is(err, passcode.ErrUnknownKey):
		return "unknown"
	case errors.Is(err, passcode.ErrBadSignature):
		return "forged"
	}
	return "malformed" // ErrMalformed, and ErrVersion: not a code this terminal can read
}

func (r *Reader) releasedLocked(pass, text string) bool {
	t := normText(text)
	return slices.ContainsFunc(r.released, func(x releasedPass) bool { return x.Pass == pass || x.Pass == t })
}

// ReleasePass is the guard confirming on the terminal that the goods of a
// pass leave: the terminal remembers the pass (persisted, so it refuses it
// as used if scanned again while offline) and queues a pass_release event
// with the text, the last digits of the mover's ID (up to 8 bytes) and the
// plate (up to 16 bytes). The event says offline unless the last verdict
// shown for this text came from the server. It does not look at whether
// that verdict was OK: the guard decides, the server records.
func (r *Reader) ReleasePass(text, mover, plate string) error {
	ev := proto.Event{Kind: "pass_release", Data: text, Zone: r.opts.Zone, Mover: mover, Plate: plate}
	if err := r.checkEvent(ev); err != nil {
		return err
	}
	r.mu.Lock()
	t := normText(text)
	i := slices.IndexFunc(r.verdicts, func(m verdictMemo) bool { return m.text == t })
	var m verdictMemo
	if i >= 0 {
		m = r.verdicts[i]
	}
	ev.Offline = i < 0 || m.offline
	if m.pass == "" {
		if c, err := passcode.Parse(text, r.passKeys); err == nil {
			m.pass, m.until = c.Pass, c.NotAfter.UnixMilli()
		}
	}
	key := m.pass
	if key == "" {
		key = t
	}
	now, _ := r.nowLocked()
	r.rememberReleasedLocked(releasedPass{Pass: key, Until: m.until}, now)
	seq := r.queueLocked(ev) // saves the released pass with the event
	r.mu.Unlock()
	r.kick(r.evtKick)
	r.log.Info("pass released", "seq", seq, "pass", key, "offline", ev.Offline)
	return nil
}

// rememberReleasedLocked adds a released pass, forgetting those whose
// window (with the skew) is over, which the check refuses anyway, and the
// oldest beyond maxReleased.
func (r *Reader) rememberReleasedLocked(p releasedPass, now time.Time) {
	over := now.Add(-passcode.DefaultSkew).UnixMilli()
	r.released = slices.DeleteFunc(r.released, func(x releasedPass) bool {
		return x.Pass == p.Pass || x.Until != 0 && x.Until <= over
	})
	r.released = append(r.released, p)
	if len(r.released) > maxReleased {
		r.released = slices.Delete(r.released, 0, len(r.released)-maxReleased)
	}
}

// MismatchPass is the guard reporting that the goods do not match the
// pass: it queues a pass_mismatch event with the text (the server cancels
// the pass).
func (r *Reader) MismatchPass(text string) error {
	ev := proto.Event{Kind: "pass_mismatch", Data: text, Zone: r.opts.Zone}
	if err := r.checkEvent(ev); err != nil {
		return err
	}
	r.mu.Lock()
	seq := r.queueLocked(ev)
	r.mu.Unlock()
	r.kick(r.evtKick)
	r.log.Info("pass mismatch", "seq", seq)
	return nil
}

// checkEvent refuses an event that could never be published (proto's
// rules: data present and at most 1 KiB, mover and plate lengths), before
// it takes a sequence number.
func (r *Reader) checkEvent(ev proto.Event) error {
	ev.Seq, ev.Clock = 1, "ok"
	if _, err := proto.Encode(&proto.Events{V: proto.Version, Events: []proto.Event{ev}}); err != nil {
		return fmt.Errorf("reader %s: %s: %w", r.opts.ID, ev.Kind, err)
	}
	return nil
}

// queueLocked numbers an event, stamps it with the reader's time and
// queues it, persistently; the caller kicks the sender.
func (r *Reader) queueLocked(ev proto.Event) uint64 {
	now, ok := r.nowLocked()
	r.evtSeq++
	ev.Seq, ev.At, ev.Clock = r.evtSeq, now.UnixMilli(), clockWord(ok)
	r.events = append(r.events, ev)
	r.changedLocked()
	return ev.Seq
}

// keyring is the configuration's pass keys (proto has checked their form).
func (r *Reader) keyring(c *proto.Config) *passcode.Keyring {
	k := &passcode.Keyring{}
	for _, s := range c.PassKeys {
		pub, err := passcode.ParsePublicKey([]byte(s))
		if err == nil {
			_, err = k.Add(pub)
		}
		if err != nil {
			r.log.Warn("pass key unusable", "err", err)
		}
	}
	return k
}

// normText is a scanned text as a code compares: trimmed, upper case.
func normText(s string) string { return strings.ToUpper(strings.Trim(s, " \t\r\n\v\f")) }
