package payterm_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"onecard/devices/payterm"
)

// Golden frames: the worked examples of docs/payterm.md, computed there
// with an independent CRC (Python's binascii.crc_hqx(data, 0xFFFF)).
var (
	goldenStatus = []byte{0x02, 0x02, 0x13, 0x01, 0xE4, 0xFD, 0x03}
	goldenACK    = []byte{0x02, 0x02, 0x06, 0x01, 0x18, 0x7B, 0x03}
	goldenSale   = []byte{
		0x02, 0x16, 0x10, 0x2A,
		0x09, 'P', 'A', 'Y', '-', '0', '0', '0', '4', '2',
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2E, 0xE0, 0x00, 0x9C,
		0x4F, 0xDA, 0x03,
	}
	goldenApproved = []byte{
		0x02, 0x31, 0x20, 0x2A,
		0x09, 'P', 'A', 'Y', '-', '0', '0', '0', '4', '2',
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2E, 0xE0, 0x00, 0x9C,
		'1', '2', '3', '4', '5', '6', 0x01, '4', '3', '2', '1',
		0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0x00, 0x03,
		0x00, 0x00, 0x00, 0x00, 0x69, 0x55, 0xB9, 0x00,
		0xAD, 0x04, 0x03,
	}
	newYear2026 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func TestCRC16CheckValue(t *testing.T) {
	if got := payterm.CRC16([]byte("123456789")); got != 0x29B1 {
		t.Fatalf("CRC16(123456789) = %04X, want 29B1 (CRC-16/CCITT-FALSE)", got)
	}
}

func TestGoldenFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		seq  byte
		m    payterm.Message
		want []byte
	}{
		{"STATUS", 0x01, payterm.StatusMsg{}, goldenStatus},
		{"ACK", 0x01, payterm.AckMsg{}, goldenACK},
		{"ACK 2A", 0x2A, payterm.AckMsg{}, []byte{0x02, 0x02, 0x06, 0x2A, 0x8D, 0x72, 0x03}},
		{"NAK 2A", 0x2A, payterm.NakMsg{}, []byte{0x02, 0x02, 0x15, 0x2A, 0xDB, 0x52, 0x03}},
		{"SALE", 0x2A, payterm.SaleMsg{Ref: "PAY-00042", Amount: 12000}, goldenSale},
		{"APPROVED", 0x2A, payterm.ApprovedMsg{
			Ref: "PAY-00042", Amount: 12000, Auth: "123456", Scheme: payterm.SchemeUnionPay,
			Last4: "4321", Trace: 17, Batch: 3, Time: newYear2026,
		}, goldenApproved},
	} {
		got, err := payterm.Marshal(tc.seq, tc.m)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s = % X (%v)\nwant % X", tc.name, got, err, tc.want)
			continue
		}
		f, n, err := payterm.Decode(got)
		if err != nil || n != len(got) || f.Seq != tc.seq {
			t.Errorf("%s: Decode: %+v %d %v", tc.name, f, n, err)
			continue
		}
		m, err := payterm.Unmarshal(f)
		if err != nil || m != tc.m {
			t.Errorf("%s: Unmarshal = %#v, %v; want %#v", tc.name, m, err, tc.m)
		}
	}
}

// allMessages holds one valid message of every type.
var allMessages = []payterm.Message{
	payterm.AckMsg{},
	payterm.NakMsg{},
	payterm.SaleMsg{Ref: "R", Amount: 1},
	payterm.SaleMsg{Ref: strings.Repeat("~", 32), Amount: payterm.MaxAmount},
	payterm.QueryMsg{Ref: "bill:2024-05/3-1-202"},
	payterm.CancelMsg{Ref: "X1"},
	payterm.StatusMsg{},
	payterm.ApprovedMsg{Ref: "A", Amount: 5, Auth: "A1B2C3", Scheme: payterm.SchemeDiscover, Last4: "0000", Trace: 999999, Batch: 1, Time: newYear2026},
	payterm.DeclinedMsg{Ref: "D", Amount: 7, Time: newYear2026, Reason: "51", Text: "余额不足 insufficient funds"},
	payterm.DeclinedMsg{Ref: "D", Amount: 7, Time: newYear2026, Reason: "C1"},
	payterm.VoidedMsg{
		ApprovedMsg: payterm.ApprovedMsg{Ref: "V", Amount: 9, Auth: "000001", Scheme: payterm.SchemeOther, Last4: "9999", Trace: 1, Batch: 2, Time: newYear2026},
		VoidTrace:   2, VoidTime: newYear2026.Add(time.Minute),
	},
	payterm.InProgressMsg{Ref: "P", Amount: 3, Phase: payterm.PhaseAuthorising},
	payterm.NotFoundMsg{Ref: "N"},
	payterm.BusyMsg{Ref: "B"},
	payterm.ErrorMsg{Code: payterm.CodeRefConflict, Text: "reference used for 100 fen"},
	payterm.ErrorMsg{Code: 0xEE},
	payterm.StatusReplyMsg{State: payterm.Idle, Batch: 1, JournalUsed: 0, JournalSize: 500, Protocol: 1, Version: "v1"},
	payterm.StatusReplyMsg{State: payterm.Selling, Ref: "S", Batch: 999999, JournalUsed: 500, JournalSize: 500, Protocol: 1},
}

func TestMessagesRoundTrip(t *testing.T) {
	for _, m := range allMessages {
		b, err := payterm.Marshal(0x7F, m)
		if err != nil {
			t.Errorf("Marshal %#v: %v", m, err)
			continue
		}
		f, n, err := payterm.Decode(b)
		if err != nil || n != len(b) || f.Type != m.Type() || f.Seq != 0x7F {
			t.Errorf("Decode % X: %+v %d %v", b, f, n, err)
			continue
		}
		got, err := payterm.Unmarshal(f)
		if err != nil || got != m {
			t.Errorf("Unmarshal = %#v, %v\nwant %#v", got, err, m)
		}
	}
}

// TestStrictParse: every body that is off by a field, a range or a byte
// is refused, with ErrMalformed and, where it applies, the field's error.
func TestStrictParse(t *testing.T) {
	sale := func(mod func(b []byte) []byte) payterm.Frame {
		b, _ := payterm.Marshal(1, payterm.SaleMsg{Ref: "R1", Amount: 100})
		f, _, _ := payterm.Decode(b)
		f.Body = mod(f.Body)
		return f
	}
	approved, _ := payterm.Marshal(1, allMessages[7])
	af, _, _ := payterm.Decode(approved)
	withByte := func(f payterm.Frame, i int, v byte) payterm.Frame {
		body := append([]byte(nil), f.Body...)
		body[i] = v
		return payterm.Frame{Type: f.Type, Seq: f.Seq, Body: body}
	}
	zero := func(f payterm.Frame, from, to int) payterm.Frame {
		for i := from; i < to; i++ {
			f = withByte(f, i, 0)
		}
		return f
	}
	for _, tc := range []struct {
		name string
		f    payterm.Frame
		also error
	}{
		{"empty sale", payterm.Frame{Type: payterm.TypeSale}, nil},
		{"trailing byte", sale(func(b []byte) []byte { return append(b, 0) }), nil},
		{"short amount", sale(func(b []byte) []byte { return b[:len(b)-1] }), nil},
		{"empty ref", sale(func(b []byte) []byte { return append([]byte{0}, b[3:]...) }), payterm.ErrBadRef},
		{"space in ref", sale(func(b []byte) []byte { b[1] = ' '; return b }), payterm.ErrBadRef},
		{"DEL in ref", sale(func(b []byte) []byte { b[2] = 0x7F; return b }), payterm.ErrBadRef},
		{"ref of 33", payterm.Frame{Type: payterm.TypeQuery, Body: append([]byte{33}, strings.Repeat("a", 33)...)}, payterm.ErrBadRef},
		{"ref longer than body", payterm.Frame{Type: payterm.TypeQuery, Body: []byte{5, 'a'}}, nil},
		{"amount 0", sale(func(b []byte) []byte { clear(b[3:11]); return b }), payterm.ErrBadAmount},
		{"amount too big", sale(func(b []byte) []byte { b[3] = 0x80; return b }), payterm.ErrBadAmount},
		{"currency USD", sale(func(b []byte) []byte { b[11], b[12] = 0x03, 0x48; return b }), payterm.ErrCurrency},
		{"status with body", payterm.Frame{Type: payterm.TypeStatus, Body: []byte{0}}, nil},
		{"ACK with body", payterm.Frame{Type: payterm.TypeACK, Body: []byte{0}}, nil},
		{"unknown type", payterm.Frame{Type: 0x42}, nil},
		{"auth lower case", withByte(af, 12, 'a'), nil},
		{"scheme 7", withByte(af, 18, 7), nil},
		{"last4 letter", withByte(af, 19, 'A'), nil},
		{"trace 0", zero(af, 23, 27), nil},
		{"time 0", zero(af, 31, 39), nil},
		{"time after 9999", withByte(af, 31, 0x01), nil},
		{"error code 0", payterm.Frame{Type: payterm.TypeError, Body: []byte{0, 0}}, nil},
		{"text with a newline", payterm.Frame{Type: payterm.TypeError, Body: []byte{1, 2, 'a', '\n'}}, nil},
		{"text not UTF-8", payterm.Frame{Type: payterm.TypeError, Body: []byte{1, 2, 0xC3, 0x28}}, nil},
		{"phase 4", payterm.Frame{Type: payterm.TypeInProgress, Body: append(append([]byte{1, 'P'}, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0x9C), 4)}, nil},
		{"idle with a ref", payterm.Frame{Type: payterm.TypeStatusReply, Body: []byte{0, 1, 'R', 0, 0, 0, 1, 0, 0, 0, 1, 1, 0}}, nil},
		{"selling without a ref", payterm.Frame{Type: payterm.TypeStatusReply, Body: []byte{1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0}}, nil},
		{"journal over its size", payterm.Frame{Type: payterm.TypeStatusReply, Body: []byte{0, 0, 0, 0, 0, 1, 0, 2, 0, 1, 1, 0}}, nil},
	} {
		m, err := payterm.Unmarshal(tc.f)
		if !errors.Is(err, payterm.ErrMalformed) {
			t.Errorf("%s: Unmarshal = %#v, %v; want ErrMalformed", tc.name, m, err)
			continue
		}
		if tc.also != nil && !errors.Is(err, tc.also) {
			t.Errorf("%s: %v, want it to wrap %v", tc.name, err, tc.also)
		}
	}
	// The good STATUS_REPLY the bad ones above are made from.
	if _, err := payterm.Unmarshal(payterm.Frame{Type: payterm.TypeStatusReply, Body: []byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0}}); err != nil {
		t.Errorf("good STATUS_REPLY: %v", err)
	}
}

func TestMarshalChecks(t *testing.T) {
	for _, m := range []payterm.Message{
		payterm.SaleMsg{Ref: "", Amount: 1},
		payterm.SaleMsg{Ref: "R", Amount: 0},
		payterm.SaleMsg{Ref: "R", Amount: -5},
		payterm.SaleMsg{Ref: "R", Amount: payterm.MaxAmount + 1},
		payterm.SaleMsg{Ref: "含中文", Amount: 1},
		payterm.ApprovedMsg{Ref: "A", Amount: 1, Auth: "12345", Last4: "1234", Trace: 1, Batch: 1, Time: newYear2026},
		payterm.ApprovedMsg{Ref: "A", Amount: 1, Auth: "123456", Last4: "1234", Trace: 1, Batch: 1},
		payterm.DeclinedMsg{Ref: "D", Amount: 1, Time: newYear2026, Reason: "5"},
		payterm.DeclinedMsg{Ref: "D", Amount: 1, Time: newYear2026, Reason: "05", Text: strings.Repeat("x", 65)},
		payterm.ErrorMsg{},
		payterm.StatusReplyMsg{State: payterm.Selling, Batch: 1, Protocol: 1},
	} {
		if b, err := payterm.Marshal(1, m); err == nil {
			t.Errorf("Marshal %#v = % X, want an error", m, b)
		}
	}
	if _, err := payterm.Encode(payterm.Frame{Type: payterm.TypeError, Body: make([]byte, payterm.MaxBody+1)}); !errors.Is(err, payterm.ErrTooLong) {
		t.Errorf("oversize body: %v", err)
	}
}

// TestDecodeResync: garbage, a stray STX, a torn frame and corrupted
// frames before good ones cost errors, never a good frame.
func TestDecodeResync(t *testing.T) {
	good := goldenSale
	badCRC := append([]byte(nil), good...)
	badCRC[10] ^= 0x40
	badETX := append([]byte(nil), good...)
	badETX[len(badETX)-1] = 0x04
	torn := good[:12]
	stream := bytes.Join([][]byte{
		{0x55, 0x02, 0x00, 0xFF}, // LEN 0: damaged
		badCRC, goldenACK, badETX, torn, goldenStatus, {0x02, 0xFF}, good,
	}, nil)
	var got []string
	for len(stream) > 0 {
		f, n, err := payterm.Decode(stream)
		switch {
		case errors.Is(err, payterm.ErrIncomplete):
			got = append(got, "incomplete")
			stream = nil
			continue
		case errors.Is(err, payterm.ErrChecksum):
			got = append(got, "crc")
		case errors.Is(err, payterm.ErrFrameEnd):
			got = append(got, "etx")
		case errors.Is(err, payterm.ErrLength):
			got = append(got, "len")
		case err != nil:
			t.Fatal(err)
		default:
			got = append(got, f.Type.String())
		}
		if n <= 0 {
			t.Fatalf("no progress at % X", stream)
		}
		stream = stream[n:]
	}
	// The torn frame's LEN runs into the STATUS frame: one damaged frame,
	// then STATUS found again from the byte after the torn STX. The stray
	// "02 FF" claims 260 bytes that never come: the good SALE behind it is
	// found anyway.
	want := "len crc ACK etx crc STATUS SALE"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("frames: %s\nwant    %s", s, want)
	}
}

func TestDecodeIncomplete(t *testing.T) {
	for i := range len(goldenSale) {
		f, n, err := payterm.Decode(goldenSale[:i])
		if !errors.Is(err, payterm.ErrIncomplete) || n != 0 {
			t.Fatalf("%d bytes: %+v %d %v, want ErrIncomplete with nothing used", i, f, n, err)
		}
	}
	if _, n, err := payterm.Decode([]byte{0x00, 0x13, 0x37}); !errors.Is(err, payterm.ErrIncomplete) || n != 3 {
		t.Fatalf("garbage without STX: %d %v, want all 3 bytes dropped", n, err)
	}
}

// FuzzDecode: Decode always makes progress or asks for more; a frame it
// returns is in the input byte for byte; a message Unmarshal accepts
// marshals back to the same frame (there is one encoding of each message).
// The input is also parsed as a frame's TYPE and body without the framing,
// so that the fuzzer reaches the message parser without forging CRCs.
func FuzzDecode(f *testing.F) {
	for _, b := range [][]byte{goldenStatus, goldenACK, goldenSale, goldenApproved, {0x02, 0xFF}, {0x02, 0x01, 0x02, 0x02, 0x13}} {
		f.Add(b)
	}
	for _, m := range allMessages {
		b, _ := payterm.Marshal(9, m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 0 && len(in)-1 <= payterm.MaxBody {
			checkParse(t, payterm.Frame{Type: payterm.Type(in[0]), Seq: 1, Body: in[1:]})
		}
		rest := in
		for len(rest) > 0 {
			fr, n, err := payterm.Decode(rest)
			if n < 0 || n > len(rest) {
				t.Fatalf("n = %d of %d", n, len(rest))
			}
			if errors.Is(err, payterm.ErrIncomplete) {
				if n < len(rest) && rest[n] != payterm.STX {
					t.Fatalf("kept % X, which does not start at an STX", rest[n:])
				}
				return
			}
			if n == 0 {
				t.Fatalf("no progress on % X (%v)", rest, err)
			}
			if err == nil {
				enc, eerr := payterm.Encode(fr)
				if eerr != nil || !bytes.HasSuffix(rest[:n], enc) {
					t.Fatalf("frame %+v does not re-encode to the bytes it came from", fr)
				}
				checkParse(t, fr)
			}
			rest = rest[n:]
		}
	})
}

// checkParse: a message Unmarshal accepts marshals back to the same frame;
// one it refuses is refused with ErrMalformed.
func checkParse(t *testing.T, fr payterm.Frame) {
	m, err := payterm.Unmarshal(fr)
	if err != nil {
		if !errors.Is(err, payterm.ErrMalformed) {
			t.Fatalf("Unmarshal error %v does not wrap ErrMalformed", err)
		}
		return
	}
	enc, err := payterm.Encode(fr)
	if err != nil {
		t.Fatal(err)
	}
	again, err := payterm.Marshal(fr.Seq, m)
	if err != nil || !bytes.Equal(again, enc) {
		t.Fatalf("%#v: marshals to % X (%v), parsed from % X", m, again, err, enc)
	}
}
