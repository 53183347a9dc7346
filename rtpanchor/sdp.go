package rtpanchor

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// SDP errors. ErrNoCommonCodec maps to SIP 488 Not Acceptable Here.
var (
	ErrBadSDP        = errors.New("rtpanchor: malformed SDP")
	ErrNoAudio       = errors.New("rtpanchor: SDP has no audio stream")
	ErrNoCommonCodec = errors.New("rtpanchor: no common codec (PCMU or PCMA)")
)

// Direction is an SDP media direction attribute (RFC 3264 section 6.1),
// from the point of view of the party that wrote the description.
type Direction string

// Directions; a phone putting the call on hold offers sendonly or inactive.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// Sends reports whether the describing party will send media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether the describing party wants media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// reverse is the answerer's direction for an offer in direction d.
func (d Direction) reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

// Description is what the anchor needs from one side's SDP: where to send
// its RTP, which codecs it takes in order of preference, its
// telephone-event payload type (0: none) and its direction.
type Description struct {
	// Addr is the RTP address; its address is unspecified (0.0.0.0) for
	// an RFC 2543 style hold, its port 0 when the stream is rejected.
	Addr      netip.AddrPort
	Codecs    []Codec
	EventPT   uint8
	Direction Direction
	// Ptime is the requested packetisation in ms (0: not given).
	Ptime int
}

// ParseSDP reads the first audio stream of a session description.
func ParseSDP(raw []byte) (Description, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(raw); err != nil {
		return Description{}, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	var md *sdp.MediaDescription
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media == "audio" {
			md = m
			break
		}
	}
	if md == nil {
		return Description{}, ErrNoAudio
	}
	conn := md.ConnectionInformation
	if conn == nil {
		conn = sd.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return Description{}, fmt.Errorf("%w: no connection address", ErrBadSDP)
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(conn.Address.Address))
	if err != nil {
		return Description{}, fmt.Errorf("%w: connection address %q (host names are not resolved)", ErrBadSDP, conn.Address.Address)
	}
	port := md.MediaName.Port.Value
	if port < 0 || port > 65535 {
		return Description{}, fmt.Errorf("%w: port %d", ErrBadSDP, port)
	}
	d := Description{Addr: netip.AddrPortFrom(ip.Unmap(), uint16(port)), Direction: SendRecv}
	for _, dir := range []Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
		if _, ok := sd.Attribute(string(dir)); ok {
			d.Direction = dir
		}
		if _, ok := md.Attribute(string(dir)); ok {
			d.Direction = dir
		}
	}
	if ip.IsUnspecified() && d.Direction != Inactive {
		// RFC 2543 hold: c=0.0.0.0 means "do not send to me".
		d.Direction = d.Direction.withoutReceive()
	}
	rtpmap := map[string]string{}
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			pt, enc, ok := strings.Cut(a.Value, " ")
			if ok {
				rtpmap[pt] = strings.ToLower(strings.TrimSpace(enc))
			}
		case "ptime":
			if n, err := strconv.Atoi(strings.TrimSpace(a.Value)); err == nil && n > 0 && n <= 200 {
				d.Ptime = n
			}
		}
	}
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 8)
		if err != nil || pt > 127 {
			continue
		}
		enc, mapped := rtpmap[f]
		// The anchor sends PCMU and PCMA with their static payload types
		// only; a dynamic type mapped to G.711 is ignored like any other
		// codec it does not speak.
		switch {
		case pt == 0 && (!mapped || strings.HasPrefix(enc, "pcmu/8000")):
			d.Codecs = append(d.Codecs, PCMU)
		case pt == 8 && (!mapped || strings.HasPrefix(enc, "pcma/8000")):
			d.Codecs = append(d.Codecs, PCMA)
		case pt >= 96 && mapped && strings.HasPrefix(enc, "telephone-event/8000") && d.EventPT == 0:
			d.EventPT = uint8(pt)
		}
	}
	return d, nil
}

// withoutReceive drops the receive half of d.
func (d Direction) withoutReceive() Direction {
	switch d {
	case SendRecv, SendOnly:
		return SendOnly
	}
	return Inactive
}

// Negotiate picks the answer to an offer: the first of the offer's codecs
// the anchor speaks, the offer's telephone-event type, and the mirrored
// direction.
func Negotiate(offer Description) (codec Codec, eventPT uint8, dir Direction, err error) {
	for _, c := range offer.Codecs {
		if c.valid() {
			return c, offer.EventPT, offer.Direction.reverse(), nil
		}
	}
	return 0, 0, "", ErrNoCommonCodec
}

// SDPParams describe the anchor's side of a stream for WriteSDP.
type SDPParams struct {
	// Addr is the anchored RTP address (the RTCP port is Addr's port + 1).
	Addr netip.AddrPort
	// SessionID and Version go into the o= line; Version must grow with
	// every new description of the same session (RFC 3264 section 8).
	SessionID, Version uint64
	// Codecs in order of preference; empty means PCMU then PCMA.
	Codecs []Codec
	// EventPT is the telephone-event payload type; 0 offers none.
	EventPT   uint8
	Direction Direction
}

// WriteSDP renders an offer or answer for one audio stream.
func WriteSDP(p SDPParams) ([]byte, error) {
	if !p.Addr.IsValid() {
		return nil, fmt.Errorf("rtpanchor: SDP address %v is not valid", p.Addr)
	}
	codecs := p.Codecs
	if len(codecs) == 0 {
		codecs = []Codec{PCMU, PCMA}
	}
	dir := p.Direction
	if dir == "" {
		dir = SendRecv
	}
	addrType := "IP4"
	if p.Addr.Addr().Is6() && !p.Addr.Addr().Is4In6() {
		addrType = "IP6"
	}
	host := p.Addr.Addr().Unmap().String()
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media:  "audio",
			Port:   sdp.RangedPort{Value: int(p.Addr.Port())},
			Protos: []string{"RTP", "AVP"},
		},
	}
	for _, c := range codecs {
		if !c.valid() {
			return nil, fmt.Errorf("rtpanchor: codec %s: %w", c, ErrNoCommonCodec)
		}
		pt := strconv.Itoa(int(c))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", pt+" "+c.String()+"/8000"))
	}
	if p.EventPT != 0 {
		pt := strconv.Itoa(int(p.EventPT))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes,
			sdp.NewAttribute("rtpmap", pt+" telephone-event/8000"),
			sdp.NewAttribute("fmtp", pt+" 0-16"))
	}
	md.Attributes = append(md.Attributes,
		sdp.NewAttribute("ptime", "20"),
		sdp.NewPropertyAttribute(string(dir)))
	sd := sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "callfloor", SessionID: p.SessionID, SessionVersion: p.Version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: host,
		},
		SessionName: "callfloor",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: host},
		},
		TimeDescriptions:  []sdp.TimeDescription{{}},
		MediaDescriptions: []*sdp.MediaDescription{md},
	}
	return sd.Marshal()
}
