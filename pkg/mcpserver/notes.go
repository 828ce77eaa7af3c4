package mcpserver

// This file is the in-memory note store behind add_note, list_notes and the
// notes:// resources. Notes belong to the subject that wrote them and only
// that subject can read them. Every dimension is bounded: users, notes per
// user, note length, and the bytes of all notes together (the first three
// alone would allow 10,000 x 100 x 4 KiB, about 4 GB).

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

const (
	maxNoteUsers    = 10000
	maxNotesPerUser = 100
	maxNoteBytes    = 4096
	// maxNoteStoreBytes bounds the whole store, as counted by noteCost.
	maxNoteStoreBytes = 64 << 20
	// noteOverhead approximates what a note costs beside its text (the
	// struct, its id and slice slot), so a flood of one-byte notes is
	// bounded too.
	noteOverhead = 128
)

// Note is one user note.
type Note struct {
	ID      string    `json:"id"`
	Text    string    `json:"text"`
	Created time.Time `json:"created"`
}

// noteStore holds notes per subject.
type noteStore struct {
	mu     sync.Mutex
	clock  func() time.Time
	byUser map[string][]Note
	nextID map[string]int
	// bytes is the noteCost of every stored note; maxBytes bounds it.
	bytes, maxBytes int
}

func newNoteStore(clock func() time.Time) *noteStore {
	return &noteStore{clock: clock, byUser: map[string][]Note{}, nextID: map[string]int{}, maxBytes: maxNoteStoreBytes}
}

// noteCost is what a note of text is counted as against maxBytes.
func noteCost(text string) int { return len(text) + noteOverhead }

var errNoteLimit = errors.New("note limit reached")

// add stores a note for subject.
func (n *noteStore) add(subject, text string) (Note, error) {
	if text == "" {
		return Note{}, errors.New("note text is empty")
	}
	if len(text) > maxNoteBytes || !utf8.ValidString(text) {
		return Note{}, fmt.Errorf("note text must be valid UTF-8 of at most %d bytes", maxNoteBytes)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	notes, known := n.byUser[subject]
	if !known && len(n.byUser) >= maxNoteUsers {
		return Note{}, fmt.Errorf("%w: too many users with notes", errNoteLimit)
	}
	if len(notes) >= maxNotesPerUser {
		return Note{}, fmt.Errorf("%w: at most %d notes per user", errNoteLimit, maxNotesPerUser)
	}
	cost := noteCost(text)
	if n.bytes+cost > n.maxBytes {
		return Note{}, fmt.Errorf("%w: the server's note storage is full (%d bytes across all users); no note was added", errNoteLimit, n.maxBytes)
	}
	n.bytes += cost
	n.nextID[subject]++
	note := Note{ID: strconv.Itoa(n.nextID[subject]), Text: text, Created: n.clock().UTC()}
	n.byUser[subject] = append(notes, note)
	return note, nil
}

// list returns a copy of subject's notes.
func (n *noteStore) list(subject string) []Note {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Note{}, n.byUser[subject]...)
}

// get returns one of subject's notes.
func (n *noteStore) get(subject, id string) (Note, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, note := range n.byUser[subject] {
		if note.ID == id {
			return note, true
		}
	}
	return Note{}, false
}
