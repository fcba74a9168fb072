package paytermsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"onecard/devices/payterm"
)

// State is a journal entry's state.
type State string

// The states of a sale in the journal.
const (
	InProgress State = "in-progress"
	Approved   State = "approved"
	Declined   State = "declined"
	Voided     State = "voided"
)

// Entry is one sale in the terminal's journal.
type Entry struct {
	Ref    string        `json:"ref"`
	Amount int64         `json:"amount"`
	State  State         `json:"state"`
	Phase  payterm.Phase `json:"phase,omitempty"`
	// Approved and voided sales.
	Auth   string         `json:"auth,omitempty"`
	Scheme payterm.Scheme `json:"scheme,omitempty"`
	Last4  string         `json:"last4,omitempty"`
	Trace  uint32         `json:"trace,omitempty"`
	Batch  uint32         `json:"batch,omitempty"`
	// Time is when the sale was approved or declined.
	Time time.Time `json:"time,omitzero"`
	// Declined sales.
	Reason string `json:"reason,omitempty"`
	Text   string `json:"text,omitempty"`
	// Voided sales.
	VoidTrace uint32    `json:"void_trace,omitempty"`
	VoidTime  time.Time `json:"void_time,omitzero"`
}

// message is what the terminal answers about e.
func (e *Entry) message() payterm.Message {
	approved := payterm.ApprovedMsg{
		Ref: e.Ref, Amount: e.Amount, Auth: e.Auth, Scheme: e.Scheme, Last4: e.Last4,
		Trace: e.Trace, Batch: e.Batch, Time: e.Time,
	}
	switch e.State {
	case Approved:
		return approved
	case Voided:
		return payterm.VoidedMsg{ApprovedMsg: approved, VoidTrace: e.VoidTrace, VoidTime: e.VoidTime}
	case Declined:
		return payterm.DeclinedMsg{Ref: e.Ref, Amount: e.Amount, Time: e.Time, Reason: e.Reason, Text: e.Text}
	}
	return payterm.InProgressMsg{Ref: e.Ref, Amount: e.Amount, Phase: e.Phase}
}

// journal is the terminal's non-volatile memory: the last sales by
// reference and its counters, in a file if it has one.
type journal struct {
	file string
	size int

	Batch uint32 `json:"batch"`
	// Trace is the last trace number used.
	Trace uint32 `json:"trace"`
	// Charges counts approvals ever made: what the acquirer has charged.
	Charges int      `json:"charges"`
	Entries []*Entry `json:"entries"`
}

// loadJournal reads file if there is one. A sale the file shows in
// progress was interrupted by the terminal's power going off (or the
// simulator stopping): in the simulator authorising and recording are one
// step, so it was never authorised; it is settled as declined, reason P0.
func loadJournal(file string, size int) (*journal, error) {
	j := &journal{file: file, size: size, Batch: 1}
	if file == "" {
		return j, nil
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return j, j.save()
	}
	if err != nil {
		return nil, fmt.Errorf("paytermsim: journal: %w", err)
	}
	if err := json.Unmarshal(b, j); err != nil {
		return nil, fmt.Errorf("paytermsim: journal %s: %w", file, err)
	}
	j.file, j.size = file, size
	if j.Batch == 0 {
		j.Batch = 1
	}
	for _, e := range j.Entries {
		if e == nil || payterm.CheckRef(e.Ref) != nil {
			return nil, fmt.Errorf("paytermsim: journal %s: a bad entry", file)
		}
		if e.State == InProgress {
			e.State, e.Phase = Declined, 0
			e.Reason, e.Text = payterm.ReasonPowerLost, payterm.ReasonText(payterm.ReasonPowerLost)
			e.Time = time.Now()
		}
	}
	j.trim()
	return j, j.save()
}

// save writes the journal to its file, if any, atomically.
func (j *journal) save() error {
	if j.file == "" {
		return nil
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("paytermsim: journal: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(j.file), "."+filepath.Base(j.file)+".*")
	if err != nil {
		return fmt.Errorf("paytermsim: journal: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), j.file)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("paytermsim: journal: %w", err)
	}
	return nil
}

func (j *journal) find(ref string) *Entry {
	for i := len(j.Entries) - 1; i >= 0; i-- {
		if j.Entries[i].Ref == ref {
			return j.Entries[i]
		}
	}
	return nil
}

// add appends e, forgetting the oldest finished entries beyond the size.
func (j *journal) add(e *Entry) {
	j.Entries = append(j.Entries, e)
	j.trim()
}

func (j *journal) trim() {
	for len(j.Entries) > j.size {
		i := 0
		for i < len(j.Entries) && j.Entries[i].State == InProgress {
			i++
		}
		if i == len(j.Entries) {
			return
		}
		j.Entries = append(j.Entries[:i], j.Entries[i+1:]...)
	}
}

// remove takes e out again (its SALE could not be recorded).
func (j *journal) remove(e *Entry) {
	for i, x := range j.Entries {
		if x == e {
			j.Entries = append(j.Entries[:i], j.Entries[i+1:]...)
			return
		}
	}
}

// nextTrace returns the next trace number, 1–999999, wrapping.
func (j *journal) nextTrace() uint32 {
	j.Trace = j.Trace%payterm.MaxTrace + 1
	return j.Trace
}
