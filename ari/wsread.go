package ari

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
)

// wsReader reads the messages of ARI's event WebSocket (RFC 6455) into
// one reused buffer: the event stream is callfloor's busiest input, and a
// reader that allocated a frame reader and a message per event was most
// of the session's CPU after decoding (docs/performance.md, "Asterisk
// side by side"). It answers pings and a close itself; it never sends
// data.
type wsReader struct {
	r   *bufio.Reader
	w   io.Writer // the connection, for pong and close frames
	max int       // the longest message accepted
	buf []byte
}

// RFC 6455 §5.2 opcodes.
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xa
)

// errWSClosed: the server closed the WebSocket (a close frame).
var errWSClosed = errors.New("websocket closed by the server")

// errWSProtocol: a frame RFC 6455 does not allow from a server.
var errWSProtocol = errors.New("websocket protocol error")

// next returns the next data message. The slice is valid until the next
// call: whoever keeps any of it copies it.
func (w *wsReader) next() ([]byte, error) {
	w.buf = w.buf[:0]
	inMessage := false
	for {
		fin, op, n, err := w.header()
		if err != nil {
			return nil, err
		}
		if op >= wsClose { // §5.5: control frames, possibly between fragments
			if !fin || n > 125 {
				return nil, fmt.Errorf("%w: control frame %#x of %d bytes, fin %v", errWSProtocol, op, n, fin)
			}
			var p [125]byte
			if _, err := io.ReadFull(w.r, p[:n]); err != nil {
				return nil, err
			}
			switch op {
			case wsPing: // §5.5.2
				if err := w.send(wsPong, p[:n]); err != nil {
					return nil, err
				}
			case wsPong:
			case wsClose: // §5.5.1: echo the status code, then the connection ends
				code := p[:min(n, 2)]
				_ = w.send(wsClose, code)
				if len(code) == 2 {
					return nil, fmt.Errorf("%w: status %d", errWSClosed, binary.BigEndian.Uint16(code))
				}
				return nil, errWSClosed
			default:
				return nil, fmt.Errorf("%w: reserved opcode %#x", errWSProtocol, op)
			}
			continue
		}
		switch {
		case op == wsContinuation && !inMessage,
			(op == wsText || op == wsBinary) && inMessage:
			return nil, fmt.Errorf("%w: opcode %#x out of sequence", errWSProtocol, op)
		case op != wsContinuation && op != wsText && op != wsBinary:
			return nil, fmt.Errorf("%w: reserved opcode %#x", errWSProtocol, op)
		}
		inMessage = true
		if n > uint64(w.max-len(w.buf)) {
			return nil, fmt.Errorf("%w: message over %d bytes", errWSProtocol, w.max)
		}
		at := len(w.buf)
		w.buf = append(w.buf, make([]byte, n)...) // grows without a temporary
		if _, err := io.ReadFull(w.r, w.buf[at:]); err != nil {
			return nil, err
		}
		if fin {
			return w.buf, nil
		}
	}
}

// header reads a frame header (§5.2).
func (w *wsReader) header() (fin bool, op byte, n uint64, err error) {
	var h [8]byte
	if _, err = io.ReadFull(w.r, h[:2]); err != nil {
		return
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0f
	if h[0]&0x70 != 0 { // no extension was negotiated
		return false, 0, 0, fmt.Errorf("%w: reserved bits %#x", errWSProtocol, h[0]&0x70)
	}
	if h[1]&0x80 != 0 { // §5.1: a client closes on a masked frame
		return false, 0, 0, fmt.Errorf("%w: masked frame from the server", errWSProtocol)
	}
	switch n = uint64(h[1] & 0x7f); n {
	case 126:
		if _, err = io.ReadFull(w.r, h[:2]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err = io.ReadFull(w.r, h[:8]); err != nil {
			return
		}
		if n = binary.BigEndian.Uint64(h[:8]); n>>63 != 0 {
			return false, 0, 0, fmt.Errorf("%w: length with its top bit set", errWSProtocol)
		}
	}
	return fin, op, n, nil
}

// send writes one masked control frame (§5.3: every client frame is
// masked).
func (w *wsReader) send(op byte, payload []byte) error {
	f := make([]byte, 0, 6+len(payload))
	f = append(f, 0x80|op, 0x80|byte(len(payload)))
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	f = append(f, key[:]...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	_, err := w.w.Write(f)
	return err
}
