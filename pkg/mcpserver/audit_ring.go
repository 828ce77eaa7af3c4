package mcpserver

import "sort"

// This file is the in-memory part of the audit log: the most recent records,
// for GET /audit-logs, as their encoded JSON lines in one byte arena.
//
// Why an arena: the ring used to hold AuditRecord structs, a dozen string
// pointers each, which the garbage collector followed in every cycle, and
// the server with auth (whose records carry subject, email, client and jti)
// paid more for it per cycle than the server without. Then it held one
// allocated line per record: ten thousand pointers, and a live heap that
// grew as the ring filled, so the collector's pace changed over the first
// ten thousand calls. The arena is one pointer-free array, allocated and
// made resident once, which the collector marks without reading, and the
// live heap and memory it adds are the same from the first call to the
// last. It also bounds the ring by bytes, not
// only by records.

// auditRingBytes bounds the bytes of the records kept in memory. Records of
// this project's users are 300 to 450 bytes, about the 419 at which the two
// caps meet; with longer subjects or emails the byte cap is the one reached.
const auditRingBytes = 4 << 20

// auditRingSize bounds the records kept in memory.
const auditRingSize = 10000

// lineRing keeps the newest lines within a fixed arena. Positions are
// virtual (they only grow); a line at virtual position p is at p % len(buf)
// and never wraps around the end. A line is live while it is within the
// last len(buf) bytes written and among the last cap(spans) lines.
type lineRing struct {
	buf   []byte
	spans []lineSpan // circular: the live lines, oldest at first
	first int        // index in spans of the oldest live line
	n     int        // live lines
	end   int64      // virtual position after the newest line
}

// lineSpan is where one line is in the arena.
type lineSpan struct {
	start int64 // virtual
	len   int
}

func newLineRing(bytes, lines int) *lineRing {
	buf := make([]byte, bytes)
	// Touch every page now: left to the lines, the arena would become
	// resident over the first tens of thousands of calls, and the server's
	// memory would creep for as long (make bench's "memory flat" check saw
	// +12% between 10 000 and 100 000 calls). Resident from the start, it is
	// a fixed 4 MiB of the idle footprint instead.
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 0
	}
	return &lineRing{buf: buf, spans: make([]lineSpan, lines)}
}

// add copies line into the ring, dropping the oldest lines it overwrites or
// that exceed the line cap. A line longer than a quarter of the arena is
// not kept (it is still in the audit file).
func (r *lineRing) add(line []byte) {
	size := int64(len(r.buf))
	if len(line) == 0 || int64(len(line)) > size/4 {
		return
	}
	start := r.end
	if off := start % size; off+int64(len(line)) > size {
		start += size - off // would cross the end: begin the next lap
	}
	r.end = start + int64(len(line))
	for r.n > 0 && (r.spans[r.first].start < r.end-size || r.n == len(r.spans)) {
		r.first = (r.first + 1) % len(r.spans)
		r.n--
	}
	copy(r.buf[start%size:], line)
	r.spans[(r.first+r.n)%len(r.spans)] = lineSpan{start: start, len: len(line)}
	r.n++
}

// olderThan returns copies of up to max live lines that start before the
// virtual position before, newest first, in one buffer, and the position of
// the oldest of them: the before of the next, older batch. A reader that
// releases its lock between batches sees every line still live when its
// batch is taken, once, and never a line overwritten meanwhile.
func (r *lineRing) olderThan(before int64, max int) (lines [][]byte, next int64) {
	span := func(i int) lineSpan { return r.spans[(r.first+i)%len(r.spans)] }
	k := sort.Search(r.n, func(i int) bool { return span(i).start >= before })
	from := k - min(k, max)
	size := 0
	for i := from; i < k; i++ {
		size += span(i).len
	}
	buf := make([]byte, 0, size)
	next = before
	for i := k - 1; i >= from; i-- {
		sp := span(i)
		off := sp.start % int64(len(r.buf))
		buf = append(buf, r.buf[off:off+int64(sp.len)]...)
		lines = append(lines, buf[len(buf)-sp.len:])
		next = sp.start
	}
	return lines, next
}
