package rtpanchor

// jitterBuffer is a leg's inbound audio as linear samples: the reader
// goroutine decodes packets into it, the clock takes one 20 ms frame per
// tick. Samples rather than packets so any ptime works. It primes with
// two frames before playing out (absorbs arrival jitter) and drops the
// oldest audio beyond six frames (bounds the delay a drifting or bursty
// sender can build up).
type jitterBuffer struct {
	buf    [jbCap]int16
	head   int // index of the oldest sample
	n      int
	primed bool
}

const (
	jbCap   = 2048
	jbPrime = 2 * FrameSamples
	jbMax   = 6 * FrameSamples
)

// push decodes payload (one G.711 byte per sample) into the buffer.
func (j *jitterBuffer) push(c Codec, payload []byte) {
	table := &ulawToPCM
	if c == PCMA {
		table = &alawToPCM
	}
	if len(payload) > jbCap {
		payload = payload[len(payload)-jbCap:]
	}
	if over := j.n + len(payload) - jbCap; over > 0 {
		j.drop(over)
	}
	tail := (j.head + j.n) % jbCap
	for _, b := range payload {
		j.buf[tail] = table[b]
		tail++
		if tail == jbCap {
			tail = 0
		}
	}
	j.n += len(payload)
}

func (j *jitterBuffer) drop(k int) {
	j.head = (j.head + k) % jbCap
	j.n -= k
}

// pull fills dst (FrameSamples long) with the next frame; false means
// there is nothing to play (not primed yet, or ran dry).
func (j *jitterBuffer) pull(dst []int16) bool {
	if !j.primed {
		if j.n < jbPrime {
			return false
		}
		j.primed = true
	}
	if j.n < len(dst) {
		j.primed = false
		return false
	}
	if j.n > jbMax {
		j.drop(j.n - jbPrime)
	}
	for i := range dst {
		dst[i] = j.buf[j.head]
		j.head++
		if j.head == jbCap {
			j.head = 0
		}
	}
	j.n -= len(dst)
	return true
}
