package locker_test

import (
	"bytes"
	"errors"
	"testing"

	"onecard/devices/locker"
)

// reply is a KR-CU16 reply frame, built here by hand (not by the codec):
// 02 · addr · 35 · l1 · l2 · 00 · 00 · 03 · SUM.
func reply(addr, l1, l2 byte) []byte {
	b := []byte{0x02, addr, 0x35, l1, l2, 0x00, 0x00, 0x03, 0}
	for _, c := range b[:8] {
		b[8] += c
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestKRCU16Requests(t *testing.T) {
	c := locker.KRCU16{}
	for _, tc := range []struct {
		name string
		got  []byte
		want []byte
	}{
		// The example in PROTOCOLS.md.
		{"status board 0", c.StatusRequest(0), []byte{0x02, 0x00, 0x30, 0x03, 0x35}},
		{"status board 1", c.StatusRequest(1), []byte{0x02, 0x10, 0x30, 0x03, 0x45}},
		{"status board 2", c.StatusRequest(2), []byte{0x02, 0x20, 0x30, 0x03, 0x55}},
		{"status board 15", c.StatusRequest(15), []byte{0x02, 0xF0, 0x30, 0x03, 0x25}},
		{"unlock board 0 lock 0 (door 1)", c.UnlockRequest(0, 0), []byte{0x02, 0x00, 0x31, 0x03, 0x36}},
		{"unlock board 0 lock 15 (door 16)", c.UnlockRequest(0, 15), []byte{0x02, 0x0F, 0x31, 0x03, 0x45}},
		{"unlock board 1 lock 1 (door 18)", c.UnlockRequest(1, 1), []byte{0x02, 0x11, 0x31, 0x03, 0x47}},
		{"unlock board 2 lock 15 (door 48)", c.UnlockRequest(2, 15), []byte{0x02, 0x2F, 0x31, 0x03, 0x65}},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: % X, want % X", tc.name, tc.got, tc.want)
		}
	}
	if c.Locks() != 16 || c.Boards() != 16 {
		t.Errorf("Locks %d, Boards %d", c.Locks(), c.Boards())
	}
}

func TestKRCU16Decode(t *testing.T) {
	// Board 0, every lock latched: 02+35+FF+FF+03 = 0x238.
	golden := []byte{0x02, 0x00, 0x35, 0xFF, 0xFF, 0x00, 0x00, 0x03, 0x38}
	if !bytes.Equal(reply(0x00, 0xFF, 0xFF), golden) {
		t.Fatalf("test helper: % X", reply(0x00, 0xFF, 0xFF))
	}
	bad := reply(0x10, 0x01, 0x00)
	bad[8]++
	infrared := reply(0x00, 0x00, 0x00)
	infrared[5], infrared[6], infrared[8] = 0xAA, 0x55, infrared[8]+0xAA+0x55
	for _, tc := range []struct {
		name string
		in   []byte
		r    locker.Reply
		n    int
		err  error
	}{
		{"all latched", golden, locker.Reply{Board: 0, Locked: 0xFFFF}, 9, nil},
		{"board 2, lock 1 and lock 16 latched", reply(0x20, 0x01, 0x80), locker.Reply{Board: 2, Locked: 0x8001}, 9, nil},
		{"unlock's answer echoes the lock", reply(0x11, 0xFF, 0x00), locker.Reply{Board: 1, Locked: 0x00FF}, 9, nil},
		{"infrared bytes ignored", infrared, locker.Reply{}, 9, nil},
		{"garbage first", cat([]byte{0xFF, 0x00, 0x13}, golden), locker.Reply{Locked: 0xFFFF}, 12, nil},
		{"a second frame left", cat(golden, reply(0x10, 0, 0)), locker.Reply{Locked: 0xFFFF}, 9, nil},
		{"empty", nil, locker.Reply{}, 0, locker.ErrIncomplete},
		{"garbage only", []byte{0xFF, 0x00, 0x35}, locker.Reply{}, 3, locker.ErrIncomplete},
		{"half a frame", golden[:5], locker.Reply{}, 0, locker.ErrIncomplete},
		{"half a frame after garbage", cat([]byte{0xEE}, golden[:8]), locker.Reply{}, 1, locker.ErrIncomplete},
		{"bad sum", bad, locker.Reply{}, 1, locker.ErrChecksum},
		{"no ETX", []byte{0x02, 0x00, 0x35, 0xFF, 0xFF, 0x00, 0x00, 0x04, 0x38}, locker.Reply{}, 1, locker.ErrFrame},
		// The echo of the host's own query on a two-wire adapter is
		// rejected at its third byte, without waiting for nine.
		{"echo of a request", []byte{0x02, 0x00, 0x30, 0x03, 0x35}, locker.Reply{}, 1, locker.ErrFrame},
		{"stray STX before a reply", cat([]byte{0x02}, golden), locker.Reply{}, 1, locker.ErrFrame},
		{"STX then one byte", []byte{0x02, 0x02}, locker.Reply{}, 0, locker.ErrIncomplete},
	} {
		r, n, err := locker.KRCU16{}.Decode(tc.in)
		if r != tc.r || n != tc.n || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("%s: Decode(% X) = %+v, %d, %v; want %+v, %d, %v", tc.name, tc.in, r, n, err, tc.r, tc.n, tc.err)
		}
	}
}

// Decoding a stream byte by byte finds the same replies as decoding it
// whole, past garbage, stray STX bytes and damaged frames.
func TestKRCU16DecodeStream(t *testing.T) {
	bad := reply(0x00, 0x00, 0x00)
	bad[8] ^= 0xFF
	stream := cat(
		[]byte{0x02, 0x00, 0x30, 0x03, 0x35}, // an echo
		reply(0x00, 0xFE, 0xFF),
		[]byte{0x02, 0x02, 0xFF}, // garbage with stray STX bytes
		bad,
		reply(0x02, 0x02, 0x02), // ADDR and bitmaps that look like STX
		[]byte{0x02},
		reply(0x20, 0x00, 0x00),
	)
	want := []locker.Reply{{Board: 0, Locked: 0xFFFE}, {Board: 0, Locked: 0x0202}, {Board: 2, Locked: 0}}
	var got []locker.Reply
	var rx []byte
	for _, c := range stream {
		rx = append(rx, c)
		for {
			r, n, err := locker.KRCU16{}.Decode(rx)
			rx = rx[n:]
			if errors.Is(err, locker.ErrIncomplete) {
				break
			}
			if err == nil {
				got = append(got, r)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("replies %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reply %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestReplyIsLocked(t *testing.T) {
	r := locker.Reply{Locked: 0x8001}
	for lock, want := range map[int]bool{0: true, 1: false, 14: false, 15: true} {
		if r.IsLocked(lock) != want {
			t.Errorf("IsLocked(%d) = %t", lock, !want)
		}
	}
}

// FuzzDecode: Decode never panics, always makes progress unless it waits
// for more bytes, keeps only a frame start when it waits, and every reply
// it returns is exactly the nine bytes before n.
func FuzzDecode(f *testing.F) {
	f.Add(reply(0x00, 0xFF, 0xFF))
	f.Add(cat([]byte{0x02, 0x00, 0x30, 0x03, 0x35}, reply(0x11, 0x00, 0x80)))
	f.Add([]byte{0x02, 0x02, 0x35})
	f.Fuzz(func(t *testing.T, in []byte) {
		rest := in
		for len(rest) > 0 {
			r, n, err := locker.KRCU16{}.Decode(rest)
			if n < 0 || n > len(rest) {
				t.Fatalf("n = %d of %d", n, len(rest))
			}
			if errors.Is(err, locker.ErrIncomplete) {
				if n < len(rest) && (rest[n] != 0x02 || len(rest)-n >= 9) {
					t.Fatalf("waits on % X, not the start of a partial frame", rest[n:])
				}
				return
			}
			if n == 0 {
				t.Fatalf("no progress on % X (%v)", rest, err)
			}
			if err == nil {
				frame := rest[n-9 : n]
				want := reply(frame[1], byte(r.Locked), byte(r.Locked>>8))
				want[5], want[6] = frame[5], frame[6]
				want[8] = 0
				for _, c := range want[:8] {
					want[8] += c
				}
				if !bytes.Equal(frame, want) || r.Board != int(frame[1]>>4) || r.Locked > 0xFFFF {
					t.Fatalf("reply %+v from % X", r, frame)
				}
				if i := bytes.IndexByte(rest[:n-9], 0x02); i >= 0 {
					t.Fatalf("skipped a frame start at %d in % X", i, rest[:n])
				}
			} else if !errors.Is(err, locker.ErrChecksum) && !errors.Is(err, locker.ErrFrame) {
				t.Fatalf("error %v", err)
			}
			rest = rest[n:]
		}
	})
}
