package media

// sendQueue is a viewer's bounded packet queue. Queueing does not wake the
// writer; kick does. The forwarder kicks at the end of a video frame (the
// marker), for every audio packet (each is a frame), for retransmissions,
// and once a burst is long enough: a decoder can use no part of a frame
// before its last packet, so waking the writer for each of a frame's
// packets would only buy goroutine switches (one per packet per viewer).
// Each wake-up then hands the socket a whole frame to one viewer, which
// batchConn sends as one GSO group. If a marker is lost the frame goes out
// with the next kick: the next audio packet (every 20 ms) or frame end.
type sendQueue struct {
	pkts chan *packet
	wake chan struct{} // capacity 1: a kick is pending
}

// kickBurst is the queue length at which the writer is woken without
// waiting for the frame's end (a keyframe is tens of packets).
const kickBurst = 32

func newSendQueue(n int) sendQueue {
	return sendQueue{pkts: make(chan *packet, n), wake: make(chan struct{}, 1)}
}

// push queues pk without waking the writer; false if the queue is full.
func (q sendQueue) push(pk *packet) bool {
	select {
	case q.pkts <- pk:
		return true
	default:
		return false
	}
}

// kickIfDue wakes the writer if pk ends a frame or the burst is long.
func (q sendQueue) kickIfDue(pk *packet) {
	if pk.kind != kindVideo || pk.marker || len(q.pkts) >= kickBurst {
		q.kick()
	}
}

// kick wakes the writer; never blocks.
func (q sendQueue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop returns the next queued packet, or nil.
func (q sendQueue) pop() *packet {
	select {
	case pk := <-q.pkts:
		return pk
	default:
		return nil
	}
}
