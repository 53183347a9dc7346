package rtpanchor

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

const phoneOffer = "v=0\r\n" +
	"o=phone 1 1 IN IP4 192.0.2.10\r\n" +
	"s=-\r\n" +
	"c=IN IP4 192.0.2.10\r\n" +
	"t=0 0\r\n" +
	"m=audio 40000 RTP/AVP 8 0 18 96\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:18 G729/8000\r\n" +
	"a=rtpmap:96 telephone-event/8000\r\n" +
	"a=fmtp:96 0-16\r\n" +
	"a=ptime:20\r\n" +
	"a=sendrecv\r\n"

func TestParseSDP(t *testing.T) {
	d, err := ParseSDP([]byte(phoneOffer))
	if err != nil {
		t.Fatal(err)
	}
	if d.Addr != netip.MustParseAddrPort("192.0.2.10:40000") || !slices.Equal(d.Codecs, []Codec{PCMA, PCMU}) ||
		d.EventPT != 96 || d.Direction != SendRecv || d.Ptime != 20 {
		t.Errorf("parsed %+v", d)
	}
	c, ev, dir, err := Negotiate(d)
	if err != nil || c != PCMA || ev != 96 || dir != SendRecv {
		t.Errorf("negotiated %s %d %s %v", c, ev, dir, err)
	}
}

func TestParseSDPHoldAndDirections(t *testing.T) {
	cases := []struct {
		name, edit string
		want       Direction
		answer     Direction
	}{
		{"sendonly hold (RFC 3264)", "a=sendonly", SendOnly, RecvOnly},
		{"inactive", "a=inactive", Inactive, Inactive},
		{"recvonly", "a=recvonly", RecvOnly, SendOnly},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseSDP([]byte(strings.Replace(phoneOffer, "a=sendrecv", tc.edit, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if d.Direction != tc.want {
				t.Errorf("direction %s, want %s", d.Direction, tc.want)
			}
			if _, _, dir, _ := Negotiate(d); dir != tc.answer {
				t.Errorf("answer direction %s, want %s", dir, tc.answer)
			}
		})
	}
	// RFC 2543 hold: c=0.0.0.0, still sendrecv.
	d, err := ParseSDP([]byte(strings.ReplaceAll(phoneOffer, "c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0")))
	if err != nil {
		t.Fatal(err)
	}
	if d.Direction != SendOnly {
		t.Errorf("c=0.0.0.0 direction %s, want sendonly", d.Direction)
	}
}

func TestParseSDPErrors(t *testing.T) {
	cases := map[string]struct {
		sdp  string
		want error
	}{
		"garbage":    {"hello", ErrBadSDP},
		"no audio":   {strings.Replace(phoneOffer, "m=audio", "m=video", 1), ErrNoAudio},
		"host name":  {strings.ReplaceAll(phoneOffer, "IP4 192.0.2.10", "IP4 phone.example"), ErrBadSDP},
		"no c= line": {strings.Replace(phoneOffer, "c=IN IP4 192.0.2.10\r\n", "", 1), ErrBadSDP},
	}
	for name, tc := range cases {
		if _, err := ParseSDP([]byte(tc.sdp)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	g729 := strings.Replace(phoneOffer, "m=audio 40000 RTP/AVP 8 0 18 96", "m=audio 40000 RTP/AVP 18", 1)
	d, err := ParseSDP([]byte(g729))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Negotiate(d); !errors.Is(err, ErrNoCommonCodec) {
		t.Errorf("G.729 only: %v, want ErrNoCommonCodec", err)
	}
}

func TestWriteSDPRoundTrip(t *testing.T) {
	raw, err := WriteSDP(SDPParams{
		Addr: netip.MustParseAddrPort("127.0.0.1:20002"), SessionID: 7, Version: 2,
		Codecs: []Codec{PCMA, PCMU}, EventPT: 101, Direction: RecvOnly,
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseSDP(raw)
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if d.Addr.String() != "127.0.0.1:20002" || !slices.Equal(d.Codecs, []Codec{PCMA, PCMU}) || d.EventPT != 101 || d.Direction != RecvOnly {
		t.Errorf("round trip %+v\n%s", d, raw)
	}
	if !strings.Contains(string(raw), "o=callfloor 7 2 IN IP4 127.0.0.1") {
		t.Errorf("origin line missing:\n%s", raw)
	}
	if _, err := WriteSDP(SDPParams{}); err == nil {
		t.Error("WriteSDP without an address succeeded")
	}
}

func FuzzParseSDP(f *testing.F) {
	f.Add([]byte(phoneOffer))
	f.Add([]byte(strings.ReplaceAll(phoneOffer, "192.0.2.10", "0.0.0.0")))
	f.Add([]byte("v=0\r\no=- 0 0 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseSDP(b)
		if err != nil {
			return
		}
		if !d.Addr.IsValid() {
			t.Fatalf("accepted SDP without a valid address: %+v", d)
		}
		if c, ev, _, err := Negotiate(d); err == nil {
			if !c.valid() {
				t.Fatalf("negotiated %v", c)
			}
			// What we answer must parse back to the same choice.
			raw, err := WriteSDP(SDPParams{Addr: netip.AddrPortFrom(d.Addr.Addr(), 20000), Codecs: []Codec{c}, EventPT: ev})
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseSDP(raw)
			if err != nil || back.Codecs[0] != c || back.EventPT != ev {
				t.Fatalf("answer does not round trip: %+v %v\n%s", back, err, raw)
			}
		}
	})
}
