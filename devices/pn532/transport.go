package pn532

import (
	"context"
	"errors"
	"fmt"
	"time"

	"onecard/devices"
)

// maxBuffered bounds the receive buffer (devices.RxBuffer): a command reads
// what came after it started, older bytes are stale.
const maxBuffered = 4096

// maxFrame is the longest normal frame on the wire.
const maxFrame = MaxData + 8

// errWait: the deadline of a wait passed. Internal: callers turn it into
// the step's own timeout error.
var errWait = errors.New("wait expired")

// rxReader reads the receive buffer byte by byte for ReadFrame, blocking
// until a deadline, the command's ctx, Close or a port failure.
type rxReader struct {
	d     *Dev
	ctx   context.Context
	timer *time.Timer
}

func (d *Dev) newReader(ctx context.Context) *rxReader {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &rxReader{d: d, ctx: ctx, timer: t}
}

func (r *rxReader) until(deadline time.Time) { r.timer.Reset(time.Until(deadline)) }

func (r *rxReader) stop() { r.timer.Stop() }

// wait returns once there are bytes to read.
func (r *rxReader) wait() error {
	d := r.d
	for {
		if d.rx.Len() > 0 {
			return nil
		}
		if err := d.rx.Err(); err != nil {
			return err
		}
		select {
		case <-d.rx.Ready():
		case <-r.timer.C:
			return errWait
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-d.closed:
			return ErrClosed
		}
	}
}

func (r *rxReader) ReadByte() (byte, error) {
	for {
		if err := r.wait(); err != nil {
			return 0, err
		}
		if b, ok, err := r.d.rx.Next(); ok || err != nil {
			return b, err
		}
	}
}

// readFrame reads the next frame that completes before deadline.
func (r *rxReader) readFrame(deadline time.Time) (Frame, error) {
	r.until(deadline)
	return ReadFrame(r)
}

// corrupt reports a frame that arrived damaged.
func corrupt(err error) bool {
	return errors.Is(err, ErrLengthChecksum) || errors.Is(err, ErrDataChecksum) || errors.Is(err, ErrExtended)
}

// wire is how long n bytes take on the line (8N1: 10 bits a byte).
func (d *Dev) wire(n int) time.Duration {
	return time.Duration(n) * 10 * time.Second / time.Duration(d.opts.Baud)
}

// write sends b. Port writes cannot be interrupted, so one runs in its own
// goroutine and the command waits for it as long as ctx allows and a
// serial port could need; a write left behind is waited for by the next.
func (d *Dev) write(ctx context.Context, b []byte) error {
	if err := d.waitWrite(ctx, d.opts.Timeout); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		_, err := d.port.Write(b)
		done <- err
	}()
	d.wdone = done
	return d.waitWrite(ctx, d.opts.AckTimeout+d.wire(len(b)))
}

func (d *Dev) waitWrite(ctx context.Context, limit time.Duration) error {
	if d.wdone == nil {
		return nil
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case err := <-d.wdone:
		d.wdone = nil
		if err != nil {
			d.rx.Fail(err)
			return d.rx.Err()
		}
		return nil
	case <-t.C:
		return fmt.Errorf("write stalled for %v: %w", limit, devices.ErrTimeout)
	case <-ctx.Done():
		return ctx.Err()
	case <-d.closed:
		return ErrClosed
	}
}

// call is one command exchange.
type call struct {
	step   string
	prefix []byte // sent before the first frame of every try (HSU wake-up)
	cmd    []byte // command code and parameters
	wait   time.Duration
	// silent is the cause returned when the PN532 ACKed but sent no
	// response within wait; nil means a devices.ErrTimeout.
	silent error
}

// do runs one command: send, ACK, response. It returns the response's data
// after its command code.
func (d *Dev) do(ctx context.Context, c call) ([]byte, error) {
	fail := func(err error) error { return &Error{Step: c.step, Err: err} }
	if err := d.usable(); err != nil {
		return nil, fail(err)
	}
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fail(ctx.Err())
	case <-d.closed:
		return nil, fail(ErrClosed)
	}
	defer func() { <-d.sem }()
	if len(c.cmd) > MaxData {
		return nil, fail(fmt.Errorf("command of %d bytes does not fit in a frame (%d at most)", len(c.cmd), MaxData))
	}
	frame, err := Encode(HostToPN532, c.cmd)
	if err != nil {
		return nil, fail(err)
	}
	out := append(append([]byte(nil), c.prefix...), frame...)
	r := d.newReader(ctx)
	defer r.stop()
	if err := d.settle(r); err != nil {
		return nil, fail(err)
	}
	if err := d.send(r, out); err != nil {
		// The PN532 may yet answer: let the next command wait it out.
		d.dirty = true
		return nil, fail(err)
	}
	data, err := d.response(r, c)
	if err != nil {
		return nil, fail(err)
	}
	return data, nil
}

// usable reports why the Dev can take no command.
func (d *Dev) usable() error {
	select {
	case <-d.closed:
		return ErrClosed
	default:
	}
	return d.rx.Err()
}

// settle waits, after a command that may have left the PN532 talking (a
// resend, an abort), until the line has been quiet for AckTimeout, so a
// late frame cannot pass for the next command's.
func (d *Dev) settle(r *rxReader) error {
	if !d.dirty {
		return nil
	}
	end := time.Now().Add(d.opts.Timeout)
	for {
		d.rx.Drain()
		quiet := time.Now().Add(d.opts.AckTimeout)
		if quiet.After(end) {
			quiet = end
		}
		r.until(quiet)
		err := r.wait()
		if errors.Is(err, errWait) {
			break
		}
		if err != nil {
			return err
		}
		if time.Now().After(end) {
			break
		}
	}
	d.rx.Drain()
	d.dirty = false
	return nil
}

// send writes the command frame until the PN532 ACKs it: a NACK, a
// damaged ACK or none within AckTimeout costs a resend, Retries times (user
// manual §6.2.3; a new command also aborts one the PN532 is still on).
func (d *Dev) send(r *rxReader, out []byte) error {
	var why error
	for try := 0; try <= d.opts.Retries; try++ {
		if try > 0 {
			d.dirty = true
		}
		d.rx.Drain()
		if err := d.write(r.ctx, out); err != nil {
			return err
		}
		why = d.ack(r, time.Now().Add(d.opts.AckTimeout+d.wire(len(out)+len(ACK))))
		if why == nil {
			return nil
		}
		if !errors.Is(why, errNoACK) && !errors.Is(why, errNACK) && !errors.Is(why, errBadACK) {
			return why
		}
	}
	tries := d.opts.Retries + 1
	if errors.Is(why, errNoACK) {
		return fmt.Errorf("no ACK after %d tries: %w", tries, devices.ErrTimeout)
	}
	return fmt.Errorf("%w (%d tries)", why, tries)
}

// Why a try got no ACK.
var (
	errNoACK  = errors.New("no ACK")
	errNACK   = errors.New("the PN532 kept answering NACK: the line corrupts commands")
	errBadACK = errors.New("the ACK kept arriving damaged")
)

// ack waits for the ACK of the command just sent.
func (d *Dev) ack(r *rxReader, deadline time.Time) error {
	for {
		f, err := r.readFrame(deadline)
		switch {
		case errors.Is(err, errWait):
			return errNoACK
		case corrupt(err):
			return errBadACK
		case err != nil:
			return err
		case f.Kind == Ack:
			return nil
		case f.Kind == Nack:
			return errNACK
		case f.Kind == AppError:
			return ErrRejected
		}
		// A normal frame before the ACK answers an earlier command: skip.
	}
}

// response waits for the frame answering c after its ACK. A damaged frame
// is NACKed, so the PN532 sends it again, Retries times. When none comes
// in time, or ctx ends, the command is aborted with an ACK.
func (d *Dev) response(r *rxReader, c call) ([]byte, error) {
	deadline := time.Now().Add(c.wait + d.wire(maxFrame))
	want := c.cmd[0] + 1
	nacks := 0
	for {
		f, err := r.readFrame(deadline)
		switch {
		case err == nil && f.Kind == Normal && f.TFI == PN532ToHost && len(f.Data) > 0 && f.Data[0] == want:
			return f.Data[1:], nil
		case err == nil && f.Kind == AppError:
			return nil, ErrRejected
		case err == nil:
			// A stray ACK or another command's late response: skip.
		case corrupt(err):
			if nacks >= d.opts.Retries {
				d.dirty = true
				return nil, fmt.Errorf("response arrived damaged %d times", nacks+1)
			}
			nacks++
			if err := d.write(r.ctx, NACK); err != nil {
				return nil, err
			}
			deadline = later(deadline, time.Now().Add(d.opts.AckTimeout+d.wire(len(NACK)+maxFrame)))
		case errors.Is(err, errWait):
			d.abort(r.ctx)
			if c.silent != nil {
				return nil, c.silent
			}
			return nil, fmt.Errorf("no response within %v: %w", c.wait, devices.ErrTimeout)
		case r.ctx.Err() != nil && errors.Is(err, r.ctx.Err()):
			d.abort(r.ctx)
			return nil, err
		default:
			return nil, err
		}
	}
}

// abort sends an ACK, which makes the PN532 drop the command in progress
// (PN532 user manual: the host's ACK is the abort mechanism), so that it is
// ready for the next one.
func (d *Dev) abort(ctx context.Context) {
	d.dirty = true
	d.write(context.WithoutCancel(ctx), ACK)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
