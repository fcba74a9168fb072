package reader_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"onecard/firmware-sim/reader"
	"onecard/fleet/proto"
	"onecard/passes/passcode"
)

// The terminals' time: 2026-05-02 10:00 in Shanghai, inside the day pass
// of 2026-05-02 (from 2026-05-01T16:00Z for 1440 minutes).
var (
	gateNow = time.Date(2026, 5, 2, 2, 0, 0, 0, time.UTC)
	dayFrom = time.Date(2026, 5, 1, 16, 0, 0, 0, time.UTC)
)

// passKey is a site's pass key and its configuration carrying it.
type passKey struct {
	priv   ed25519.PrivateKey
	config *proto.Config
}

func newPassKey(t *testing.T) passKey {
	t.Helper()
	k, err := passcode.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
	return passKey{k, &proto.Config{V: 1, TZ: "Asia/Shanghai", PassKeys: []string{pub}}}
}

// code signs a pass for a gate, valid from `from` for `d`.
func (k passKey) code(t *testing.T, pass, gate string, from time.Time, d time.Duration) string {
	t.Helper()
	s, err := passcode.Sign(k.priv, passcode.Claims{Pass: pass, Gate: gate, NotBefore: from, NotAfter: from.Add(d)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// flip changes one bit of a code's bytes, keeping it well-formed text.
func flip(t *testing.T, code string, byteAt int) string {
	t.Helper()
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	b, err := enc.DecodeString(strings.TrimPrefix(code, passcode.Prefix))
	if err != nil {
		t.Fatal(err)
	}
	if byteAt < 0 {
		byteAt += len(b)
	}
	b[byteAt] ^= 0x01
	return passcode.Prefix + enc.EncodeToString(b)
}

type scanResult struct {
	v   reader.PassVerdict
	err error
}

// scan runs ScanPass in the background.
func scan(r *reader.Reader, text string) <-chan scanResult {
	ch := make(chan scanResult, 1)
	go func() {
		v, err := r.ScanPass(context.Background(), text)
		ch <- scanResult{v, err}
	}()
	return ch
}

func result(t *testing.T, ch <-chan scanResult) reader.PassVerdict {
	t.Helper()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("ScanPass: %v", res.err)
		}
		return res.v
	case <-time.After(2 * wait):
		t.Fatal("ScanPass did not return")
	}
	return reader.PassVerdict{}
}

// passEvent waits for a device's event of a kind with data, skipping the
// others.
func passEvent(srv *server, device, kind, data string) proto.Event {
	srv.t.Helper()
	var got proto.Event
	expect[proto.Events](srv, proto.KindEvt, device, func(es proto.Events) bool {
		i := slices.IndexFunc(es.Events, func(e proto.Event) bool { return e.Kind == kind && e.Data == data })
		if i >= 0 {
			got = es.Events[i]
		}
		return i >= 0
	})
	return got
}

// verdict is a verdict command expiring a minute after the terminals' time.
func verdict(id string, v proto.Verdict) *proto.Command {
	return &proto.Command{V: 1, ID: id, Cmd: "verdict", Expires: gateNow.Add(time.Minute).UnixMilli(), Verdict: &v}
}

// configured sends the site configuration (retained) and waits until the
// readers hold its keys.
func configured(t *testing.T, srv *server, c *proto.Config, rs ...*reader.Reader) {
	t.Helper()
	srv.send(topics.Config(), c, true)
	for _, r := range rs {
		eventually(t, r.ID()+" has the pass keys", func() bool { return r.Status().PassKeys == len(c.PassKeys) })
	}
}

// Online, the server's verdict is shown as sent (the scan's text as read,
// its zone); a release after it is not offline; a mismatch is reported.
// Neither opens the relay.
func TestPassScanOnline(t *testing.T) {
	broker := startBroker(t)
	srv := newServer(t, broker)
	clk := &clock{t: gateNow}
	r, _ := start(t, reader.Options{Broker: broker, ID: "gate-1", Zone: "gate", Clock: clk.Now, VerdictWait: 2 * wait})
	srv.state("gate-1", born(1))
	eventually(t, "online", r.Online) // else it decides at once, by itself

	text := " ocp:aflEOAOECSAA\r\n" // as read: the server trims and parses it, not the terminal
	res := scan(r, text)
	e := passEvent(srv, "gate-1", "pass_scan", text)
	if e.Zone != "gate" || e.Clock != "ok" || e.At != gateNow.UnixMilli() {
		t.Errorf("pass_scan %+v", e)
	}
	want := proto.Verdict{Scan: e.Seq, OK: true, Pass: "2026-000123", Unit: "1-1-101", Items: "沙发 ×1, 冰箱 ×1",
		Plate: "粤B12345", Until: dayFrom.Add(24 * time.Hour).UnixMilli(), Warn: "该户有欠费，已由主管批准放行"}
	srv.send(topics.Device("gate-1", proto.KindCmd), verdict("v1", want), false)
	if got := result(t, res); got.Verdict != want || got.Offline {
		t.Errorf("verdict %+v, want %+v online", got, want)
	}

	if err := r.ReleasePass(text, "0042", "粤B12345"); err != nil {
		t.Fatal(err)
	}
	rel := passEvent(srv, "gate-1", "pass_release", text)
	if rel.Offline || rel.Mover != "0042" || rel.Plate != "粤B12345" || rel.Seq != e.Seq+1 {
		t.Errorf("pass_release %+v", rel)
	}
	if err := r.MismatchPass("OCP:OTHER"); err != nil {
		t.Fatal(err)
	}
	if mm := passEvent(srv, "gate-1", "pass_mismatch", "OCP:OTHER"); mm.Seq != e.Seq+2 {
		t.Errorf("pass_mismatch %+v", mm)
	}
	if st := r.Status(); st.RelayOpens != 0 || st.Released != 1 {
		t.Errorf("status %+v: the relay opened, or the release is not remembered", st)
	}

	// Events the protocol cannot carry are refused before taking a number.
	for name, err := range map[string]error{
		"empty scan":     func() error { _, err := r.ScanPass(context.Background(), ""); return err }(),
		"long mover":     r.ReleasePass(text, "123456789", ""),
		"long plate":     r.ReleasePass(text, "", strings.Repeat("B", 17)),
		"empty mismatch": r.MismatchPass(""),
	} {
		if err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if st := r.Status(); st.EventSeq != e.Seq+2 {
		t.Errorf("event seq %d after refused events, want %d", st.EventSeq, e.Seq+2)
	}
}

// Offline, the terminal checks the code with the configuration's key:
// signature, window with the default skew, gate.
func TestPassScanOffline(t *testing.T) {
	broker := startBroker(t)
	srv := newServer(t, broker)
	key, other := newPassKey(t), newPassKey(t)
	clk := &clock{t: gateNow}
	r, _ := start(t, reader.Options{Broker: broker, ID: "gate-1", Zone: "gate", Clock: clk.Now})
	srv.state("gate-1", born(1))
	both := *key.config
	both.PassKeys = append(other.config.PassKeys, key.config.PassKeys...)
	configured(t, srv, &both, r)
	configured(t, srv, key.config, r) // a key withdrawn: the new configuration is taken
	r.Offline(true)
	srv.state("gate-1", died(1))

	day := 24 * time.Hour
	valid := key.code(t, "2026-000123", "gate", dayFrom, day)
	for _, tc := range []struct {
		name, text, reason string // reason "": accepted
		pass               string
	}{
		{"valid", valid, "", "2026-000123"},
		{"valid, lower case, as a wedge scanner types it", "  " + strings.ToLower(valid) + "\r\n", "", "2026-000123"},
		{"bit flipped in the pass number", flip(t, valid, 10), "forged", ""},
		{"bit flipped in the signature", flip(t, valid, -1), "forged", ""},
		{"another site's key", other.code(t, "2026-000123", "gate", dayFrom, day), "unknown", ""},
		{"wrong gate", key.code(t, "2026-000124", "south", dayFrom, day), "wrong_gate", "2026-000124"},
		{"expired yesterday", key.code(t, "2026-000125", "gate", dayFrom.Add(-day), day), "expired", "2026-000125"},
		{"ended 6 min ago", key.code(t, "2026-000126", "gate", gateNow.Add(-time.Hour), 54*time.Minute), "expired", "2026-000126"},
		{"ended 4 min ago: within the skew", key.code(t, "2026-000127", "gate", gateNow.Add(-time.Hour), 56*time.Minute), "", "2026-000127"},
		{"tomorrow's", key.code(t, "2026-000128", "gate", dayFrom.Add(day), day), "not_yet_valid", "2026-000128"},
		{"a pass number typed by hand", "2026-000123", "malformed", ""},
		{"truncated", valid[:100], "malformed", ""},
	} {
		v, err := r.ScanPass(context.Background(), tc.text)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if v.OK != (tc.reason == "") || v.Reason != tc.reason || !v.Offline || v.Pass != tc.pass || v.Scan == 0 {
			t.Errorf("%s: %+v, want reason %q pass %q offline", tc.name, v, tc.reason, tc.pass)
		}
		if v.OK && v.Warn != reader.OfflineWarn {
			t.Errorf("%s: accepted offline without saying so: %q", tc.name, v.Warn)
		}
	}
	if st := r.Status(); st.Pending != 12 || st.RelayOpens != 0 {
		t.Errorf("status %+v: every scan queued, no relay", st)
	}

	// A terminal without keys says it cannot check; it still knows
	// malformed text.
	bare, err := reader.New(reader.Options{Site: site, ID: "gate-2", Zone: "gate", Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for text, reason := range map[string]string{valid: reader.ReasonNoKeys, "hello": "malformed"} {
		if v, err := bare.ScanPass(context.Background(), text); err != nil || v.OK || v.Reason != reason || !v.Offline {
			t.Errorf("without keys, %.12s…: %+v %v, want %s", text, v, err, reason)
		}
	}
}

// A release made offline is remembered across a restart (a second scan is
// refused as used), and its event, marked offline, waits in the queue until
// the reader is back.
func TestPassReleaseOffline(t *testing.T) {
	broker := startBroker(t)
	srv := newServer(t, broker)
	key := newPassKey(t)
	clk := &clock{t: gateNow}
	o := reader.Options{Broker: broker, Site: site, ID: "gate-1", Zone: "gate", Clock: clk.Now,
		StateFile: filepath.Join(t.TempDir(), "gate-1.json")}
	r, stop := start(t, o)
	srv.state("gate-1", born(1))
	configured(t, srv, key.config, r)
	r.Offline(true)
	srv.state("gate-1", died(1))

	code := key.code(t, "2026-000123", "gate", dayFrom, 24*time.Hour)
	another := key.code(t, "2026-000124", "gate", dayFrom, 24*time.Hour)
	scanOffline := func(r *reader.Reader, text string) reader.PassVerdict {
		t.Helper()
		v, err := r.ScanPass(context.Background(), text)
		if err != nil || !v.Offline {
			t.Fatalf("scan: %+v %v", v, err)
		}
		return v
	}
	if v := scanOffline(r, code); !v.OK {
		t.Fatalf("first scan refused: %+v", v)
	}
	if err := r.ReleasePass(code, "0042", "粤B12345"); err != nil {
		t.Fatal(err)
	}
	if v := scanOffline(r, "\t"+strings.ToLower(code)); v.OK || v.Reason != "used" || v.Pass != "2026-000123" {
		t.Errorf("second scan of a released pass: %+v, want used", v)
	}
	if v := scanOffline(r, another); !v.OK {
		t.Errorf("another pass after a release: %+v", v)
	}
	stop()

	// Restarted from its state file: the keys and the release are kept.
	r2, err := reader.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if v := scanOffline(r2, code); v.OK || v.Reason != "used" {
		t.Errorf("scan after a restart: %+v, want used", v)
	}

	// Back online: everything is replayed, the release marked offline.
	start(t, o)
	srv.state("gate-1", born(2))
	var got []proto.Event
	for len(got) == 0 || got[len(got)-1].Seq < 5 {
		got = append(got, expect[proto.Events](srv, proto.KindEvt, "gate-1", nil).Events...)
	}
	var kinds []string
	for _, e := range got {
		kinds = append(kinds, e.Kind)
	}
	if want := []string{"pass_scan", "pass_release", "pass_scan", "pass_scan", "pass_scan"}; !slices.Equal(kinds, want) {
		t.Fatalf("replayed %q, want %q", kinds, want)
	}
	if rel := got[1]; !rel.Offline || rel.Data != code || rel.Mover != "0042" || rel.Plate != "粤B12345" || rel.Zone != "gate" {
		t.Errorf("pass_release %+v", rel)
	}
}

// A verdict answers one scan: one for another seq, an expired one, or one
// whose id already ran is ignored; with none in time the terminal decides
// itself.
func TestVerdictForAnotherScan(t *testing.T) {
	broker := startBroker(t)
	srv := newServer(t, broker)
	key := newPassKey(t)
	clk := &clock{t: gateNow}
	r, _ := start(t, reader.Options{Broker: broker, ID: "gate-1", Zone: "gate", Clock: clk.Now, VerdictWait: 2 * wait})
	quick, _ := start(t, reader.Options{Broker: broker, ID: "gate-2", Zone: "gate", Clock: clk.Now, VerdictWait: 100 * time.Millisecond})
	srv.states("gate-1", born(1))
	srv.states("gate-2", born(1))
	configured(t, srv, key.config, r, quick)
	eventually(t, "online", func() bool { return r.Online() && quick.Online() })
	code := key.code(t, "2026-000123", "gate", dayFrom, 24*time.Hour)
	cmd := topics.Device("gate-1", proto.KindCmd)

	res := scan(r, code)
	seq := passEvent(srv, "gate-1", "pass_scan", code).Seq
	ok := proto.Verdict{Scan: seq, OK: true, Pass: "2026-000123"}
	wrongScan := ok
	wrongScan.Scan = seq + 1
	srv.send(cmd, verdict("x1", wrongScan), false)
	expired := verdict("x2", ok)
	expired.Expires = gateNow.Add(-time.Second).UnixMilli()
	srv.send(cmd, expired, false)
	cancelled := proto.Verdict{Scan: seq, Reason: "cancelled", Pass: "2026-000123"}
	srv.send(cmd, verdict("x3", cancelled), false)
	if got := result(t, res); got.Verdict != cancelled || got.Offline {
		t.Errorf("verdict %+v, want %+v (another scan's and an expired verdict ignored)", got, cancelled)
	}

	res = scan(r, code)
	seq = passEvent(srv, "gate-1", "pass_scan", code).Seq
	ok.Scan = seq
	srv.send(cmd, verdict("x3", ok), false) // an id already run
	used := proto.Verdict{Scan: seq, Reason: "used", Pass: "2026-000123"}
	srv.send(cmd, verdict("x4", used), false)
	if got := result(t, res); got.Verdict != used || got.Offline {
		t.Errorf("verdict %+v, want %+v (a repeated id ignored)", got, used)
	}

	// gate-2 waits briefly; the only verdict it gets is for another scan.
	res = scan(quick, code)
	seq = passEvent(srv, "gate-2", "pass_scan", code).Seq
	srv.send(topics.Device("gate-2", proto.KindCmd), verdict("y1", proto.Verdict{Scan: seq + 1, Reason: "cancelled"}), false)
	if got := result(t, res); !got.OK || !got.Offline || got.Scan != seq {
		t.Errorf("verdict %+v, want its own acceptance", got)
	}
	if err := quick.ReleasePass(code, "", ""); err != nil {
		t.Fatal(err)
	}
	if rel := passEvent(srv, "gate-2", "pass_release", code); !rel.Offline {
		t.Errorf("release after its own verdict: %+v, want offline", rel)
	}
	if r.RelayOpens()+quick.RelayOpens() != 0 {
		t.Error("a verdict opened the relay")
	}
}

// A gate terminal that never reached the server decides by itself.
func ExampleReader_ScanPass() {
	r, err := reader.New(reader.Options{Site: "s1", ID: "gate-1", Zone: "gate"})
	if err != nil {
		panic(err)
	}
	v, err := r.ScanPass(context.Background(), "2026-000123")
	fmt.Println(v.OK, v.Reason, v.Offline, err, r.Pending())
	// Output: false malformed true <nil> 1
}
