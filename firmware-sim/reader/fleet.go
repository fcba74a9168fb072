package reader

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
)

// Fleet is many readers running in one process, for load tests and demos.
type Fleet struct {
	readers []*Reader
	byID    map[string]*Reader
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	errs    []error
}

// StartFleet makes n readers from base and runs them until ctx ends or
// Stop. Reader i gets the id idf(i) (i from 0; nil idf: "reader-1" …); a
// non-empty base.StateFile is a directory, where each reader keeps
// <id>.json; every reader uses base.Secret.
func StartFleet(ctx context.Context, base Options, n int, idf func(i int) string) (*Fleet, error) {
	if idf == nil {
		idf = func(i int) string { return fmt.Sprintf("reader-%d", i+1) }
	}
	opts := make([]Options, n)
	for i := range opts {
		o := base
		o.ID = idf(i)
		if base.StateFile != "" {
			o.StateFile = filepath.Join(base.StateFile, o.ID+".json")
		}
		opts[i] = o
	}
	return StartReaders(ctx, opts)
}

// StartReaders makes a reader of each Options and runs them until ctx ends
// or Stop.
func StartReaders(ctx context.Context, opts []Options) (*Fleet, error) {
	f := &Fleet{byID: map[string]*Reader{}}
	for _, o := range opts {
		if _, dup := f.byID[o.ID]; dup {
			return nil, fmt.Errorf("reader: fleet: id %q twice", o.ID)
		}
		r, err := New(o)
		if err != nil {
			return nil, err
		}
		f.readers = append(f.readers, r)
		f.byID[o.ID] = r
	}
	ctx, f.cancel = context.WithCancel(ctx)
	for _, r := range f.readers {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := r.Run(ctx); err != nil {
				f.mu.Lock()
				f.errs = append(f.errs, err)
				f.mu.Unlock()
			}
		}()
	}
	return f, nil
}

// Readers are the fleet's readers, in the order they were made.
func (f *Fleet) Readers() []*Reader { return f.readers }

// Reader is the reader with an id, or nil.
func (f *Fleet) Reader(id string) *Reader { return f.byID[id] }

// Online counts the readers online.
func (f *Fleet) Online() int {
	n := 0
	for _, r := range f.readers {
		if r.Online() {
			n++
		}
	}
	return n
}

// Stop stops every reader cleanly (each publishes its offline state and
// disconnects) and waits for them.
func (f *Fleet) Stop() error {
	f.cancel()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Join(f.errs...)
}
