package mcpserver

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lineModel is the plain definition the ring must agree with: the newest
// lines whose total fits in the arena (counting the gaps the ring leaves at
// the end of each lap, which the model replays) and at most max of them.
type lineModel struct {
	size, max int
	lines     []string
	starts    []int64
	end       int64
}

func (m *lineModel) add(line string) {
	size := int64(m.size)
	if len(line) == 0 || int64(len(line)) > size/4 {
		return
	}
	start := m.end
	if off := start % size; off+int64(len(line)) > size {
		start += size - off
	}
	m.end = start + int64(len(line))
	m.lines, m.starts = append(m.lines, line), append(m.starts, start)
	for len(m.lines) > 0 && (m.starts[0] < m.end-size || len(m.lines) > m.max) {
		m.lines, m.starts = m.lines[1:], m.starts[1:]
	}
}

func (m *lineModel) newestFirst() []string {
	out := []string{}
	for i := len(m.lines) - 1; i >= 0; i-- {
		out = append(out, m.lines[i])
	}
	return out
}

// ringLines reads every live line, newest first, in batches of batch.
func ringLines(r *lineRing, batch int) []string {
	out := []string{}
	before := int64(math.MaxInt64)
	for {
		lines, next := r.olderThan(before, batch)
		if len(lines) == 0 {
			return out
		}
		for _, l := range lines {
			out = append(out, string(l))
		}
		before = next
	}
}

// TestLineRingAgreesWithModel adds random lines, short and long, and after
// each add compares every line the ring returns with the model's: no line is
// torn by a later one, none is lost before it must be, the caps hold.
func TestLineRingAgreesWithModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ size, max int }{{64, 100}, {64, 3}, {1000, 7}, {4096, 1000}} {
		r := newLineRing(c.size, c.max)
		m := &lineModel{size: c.size, max: c.max}
		for i := range 2000 {
			n := rng.IntN(c.size/4 + 3) // sometimes too long to keep, sometimes empty
			line := strings.Repeat(string(rune('a'+i%26)), n)
			if n > 0 {
				line = fmt.Sprintf("%d:", i) + line
				line = line[:n]
			}
			r.add([]byte(line))
			m.add(line)
			require.Equal(t, m.newestFirst(), ringLines(r, 1+i%5), "size %d max %d after add %d", c.size, c.max, i)
		}
	}
}

// TestLineRingCopiesOut: lines handed out are copies, unchanged when the
// arena is overwritten; batches go from newest to oldest, and a batch taken
// after lines were overwritten skips them.
func TestLineRingCopiesOut(t *testing.T) {
	r := newLineRing(16, 10)
	r.add([]byte("aaaa"))
	r.add([]byte("bbbb"))
	got, next := r.olderThan(math.MaxInt64, 1)
	require.Equal(t, [][]byte{[]byte("bbbb")}, got)
	for range 8 {
		r.add([]byte("cccc"))
	}
	assert.Equal(t, "bbbb", string(got[0]), "a returned line is a copy")
	older, _ := r.olderThan(next, 10)
	assert.Empty(t, older, "aaaa was overwritten before the next batch")
	assert.Equal(t, []string{"cccc", "cccc", "cccc", "cccc"}, ringLines(r, 10), "16 bytes hold four 4-byte lines")
}
