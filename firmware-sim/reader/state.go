package reader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"onecard/fleet/proto"
)

// stateVersion is the format of the state file.
const stateVersion = 1

// fileState is the state file: what a reader keeps across power losses.
type fileState struct {
	V         int                        `json:"v"`
	Session   uint64                     `json:"session"`
	Applied   map[string]uint64          `json:"applied"`
	Whitelist map[string]json.RawMessage `json:"whitelist"` // zone: []proto.Entry
	EventSeq  uint64                     `json:"event_seq"`
	Events    []proto.Event              `json:"events"` // not yet acknowledged
	Config    *proto.Config              `json:"config,omitempty"`
	Commands  []string                   `json:"commands,omitempty"` // ids of recently run commands
	Time      int64                      `json:"time"`               // Unix ms of the save, the clock's fallback
	Released  []releasedPass             `json:"released,omitempty"` // passes released at this gate terminal
}

// load reads StateFile, if it exists, keeping the zones the reader holds.
func (r *Reader) load() error {
	b, err := os.ReadFile(r.opts.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reader %s: state: %w", r.opts.ID, err)
	}
	var f fileState
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("reader %s: state %s: %w", r.opts.ID, r.opts.StateFile, err)
	}
	if f.V != stateVersion {
		return fmt.Errorf("reader %s: state %s: version %d", r.opts.ID, r.opts.StateFile, f.V)
	}
	r.session, r.evtSeq, r.ranCmds, r.lastTime = f.Session, f.EventSeq, f.Commands, f.Time
	for _, z := range r.zones {
		r.applied[z] = f.Applied[z]
		var es []proto.Entry
		if raw := f.Whitelist[z]; raw != nil {
			if err := json.Unmarshal(raw, &es); err != nil {
				return fmt.Errorf("reader %s: state %s: zone %s: %w", r.opts.ID, r.opts.StateFile, z, err)
			}
		}
		b := newBuilder(len(es))
		b.add(es)
		r.wl[z] = b.done()
	}
	for i, e := range f.Events {
		if e.Seq > f.EventSeq || (i > 0 && e.Seq != f.Events[i-1].Seq+1) {
			return fmt.Errorf("reader %s: state %s: event queue out of sequence at %d", r.opts.ID, r.opts.StateFile, e.Seq)
		}
	}
	r.events = f.Events
	r.released = f.Released
	if f.Config != nil {
		if s, err := compile(f.Config); err == nil {
			r.config, r.sched, r.passKeys = f.Config, s, r.keyring(f.Config)
		} else {
			r.log.Warn("saved configuration unusable", "err", err)
		}
	}
	return nil
}

// changedLocked records that the state changed: it is saved now, or by the
// next periodic save.
func (r *Reader) changedLocked() error {
	if r.clockOK {
		r.lastTime = r.clock().UnixMilli()
	}
	if r.opts.StateFile == "" {
		return nil
	}
	if r.opts.SaveEvery > 0 {
		r.dirty = true
		return nil
	}
	return r.saveLocked()
}

// saveLocked writes the state file: a temporary file renamed over the old
// one, so a crash leaves the old state or the new, never half of one.
func (r *Reader) saveLocked() error {
	if r.opts.StateFile == "" {
		return nil
	}
	if r.clockOK {
		r.lastTime = r.clock().UnixMilli()
	}
	f := fileState{
		V:         stateVersion,
		Session:   r.session,
		Applied:   r.applied,
		Whitelist: make(map[string]json.RawMessage, len(r.wl)),
		EventSeq:  r.evtSeq,
		Events:    r.events,
		Config:    r.config,
		Commands:  r.ranCmds,
		Time:      r.lastTime,
		Released:  r.released,
	}
	var err error
	for z, wl := range r.wl {
		raw := r.wlJSON[z]
		if raw == nil { // changed since the last save
			if raw, err = json.Marshal(wl.entries()); err != nil {
				return err
			}
			r.wlJSON[z] = raw
		}
		f.Whitelist[z] = raw
	}
	b, err := json.Marshal(&f)
	if err == nil {
		err = writeAtomic(r.opts.StateFile, b, r.opts.Fsync)
	}
	if err != nil {
		r.saveFailure++
		r.log.Error("state not saved", "file", r.opts.StateFile, "err", err)
		return fmt.Errorf("reader %s: save state: %w", r.opts.ID, err)
	}
	r.dirty = false
	return nil
}

func writeAtomic(path string, b []byte, fsync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if fsync {
		if d, err := os.Open(filepath.Dir(path)); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return nil
}

// Flush writes the state file now if a periodic save is due.
func (r *Reader) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.dirty {
		return nil
	}
	return r.saveLocked()
}

// saveLoop is the periodic save (Options.SaveEvery).
func (r *Reader) saveLoop(ctx context.Context) {
	t := time.NewTicker(r.opts.SaveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Flush()
		}
	}
}
