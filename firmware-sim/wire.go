package firmwaresim

import (
	"context"
	"io"
	"time"
)

// WireTime is how long n bytes take on a serial line at baud, 10 bits a
// byte (8N1); 0 when baud is 0 or less (no pacing).
func WireTime(n, baud int) time.Duration {
	if baud <= 0 {
		return 0
	}
	return time.Duration(n) * 10 * time.Second / time.Duration(baud)
}

// Pace writes b as a UART at baud would deliver it: in chunks of about
// 2 ms of line time, each written when its last byte would have arrived.
// Deadlines are reckoned from the start, so sleeping late never
// accumulates. A baud of 0 or less writes at once.
func Pace(ctx context.Context, w io.Writer, b []byte, baud int) error {
	if baud <= 0 {
		_, err := w.Write(b)
		return err
	}
	chunk := max(1, baud/10/500)
	start := time.Now()
	for off := 0; off < len(b); {
		end := min(off+chunk, len(b))
		if err := Sleep(ctx, time.Until(start.Add(WireTime(end, baud)))); err != nil {
			return err
		}
		if _, err := w.Write(b[off:end]); err != nil {
			return err
		}
		off = end
	}
	return nil
}

// Sleep waits d or until ctx is done (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
