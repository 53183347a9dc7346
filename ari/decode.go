package ari

import (
	"bytes"
	"fmt"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/callfloor/callfloor/internal/jsonv1"
	"github.com/go-json-experiment/json/jsontext"
	// What ari.ChannelData.UnmarshalJSON converts creation times with, so
	// both decoders give identical values.
	ptypes "github.com/gogo/protobuf/types"
)

// decodeCommon decodes the events a call brings (StasisStart … BridgeDestroyed,
// DTMF, device states) in one pass into the values ari.DecodeEvent gives;
// TestDecodeCommonLikeLibrary compares the two on every recorded and
// modelled event. The library reads an event three times — its type, the
// typed event, and each channel again in ChannelData.UnmarshalJSON's own
// json.Unmarshal — and half of that goes: 16.9 → 8.3 µs an event, and
// 6.0 µs with internal/jsonv1's decoder (BenchmarkDecodeCommon). Decoding was 15 % of callfloor's CPU on
// Asterisk at 100 calls/s (docs/performance.md, "Asterisk side by side
// with app_queue"). ok is false for any other type, before any decoding:
// the caller uses the library.
func decodeCommon(data []byte) (ev ari.Event, ok bool, err error) {
	typ := peekType(data)
	build := commonEvents[string(typ)]
	if build == nil {
		return nil, false, nil
	}
	var w commonEvent
	// encoding/json's meaning, faster (internal/jsonv1).
	if err := jsonv1.Unmarshal(data, &w); err != nil {
		return nil, true, fmt.Errorf("ari: decoding event: %w", err)
	}
	if w.Type != string(typ) {
		return nil, false, nil // a second "type" key: the library decides
	}
	base := ari.EventData{Application: w.Application, Dialog: w.Dialog, Node: w.Node, Timestamp: ari.DateTime(w.Timestamp), Type: w.Type}
	return build(&w, base), true, nil
}

// commonEvents builds each type decodeCommon decodes from its fields.
var commonEvents = map[string]func(w *commonEvent, base ari.EventData) ari.Event{
	"StasisStart": func(w *commonEvent, base ari.EventData) ari.Event {
		return &ari.StasisStart{EventData: base, Args: w.Args, Channel: w.Channel.data(), ReplaceChannel: w.ReplaceChannel.data()}
	},
	"StasisEnd": func(w *commonEvent, base ari.EventData) ari.Event {
		return &ari.StasisEnd{EventData: base, Channel: w.Channel.data()}
	},
	"ChannelStateChange": func(w *commonEvent, base ari.EventData) ari.Event {
		return &ari.ChannelStateChange{EventData: base, Channel: w.Channel.data()}
	},
	"Dial": func(w *commonEvent, base ari.EventData) ari.Event {
		return &ari.Dial{EventData: base, Caller: w.Caller.data(), Dialstatus: w.Dialstatus, Dialstring: w.Dialstring,
			Forward: w.Forward, Forwarded: w.Forwarded.data(), Peer: w.Peer.data()}
	},
	"ChannelHangupRequest": func(w *commonEvent, base ari.EventData) ari.Event {
		return &ari.ChannelHangupRequest{EventData: base, Cause: w.Cause, Channel: w.Channel.data(), Soft: w.Soft}
	},
	"ChannelDestroyed": func(w *commonEvent, base ari.EventData) ari.Event {
		return &ari.ChannelDestroyed{EventData: base, Cause: w.Cause, CauseTxt: w.CauseTxt, Channel: w.Channel.data()}
	},
	"ChannelEnteredBridge": func(w *commonEvent, base ari.EventData) ari.Event {
		return &ari.ChannelEnteredBridge{EventData: base, Bridge: w.Bridge, Channel: w.Channel.data()}
	},
	"ChannelLeftBridge": func(w *commonEvent, base ari.EventData) ari.Event {
		return &ari.ChannelLeftBridge{EventData: base, Bridge: w.Bridge, Channel: w.Channel.data()}
	},
	"BridgeDestroyed": func(w *commonEvent, base ari.EventData) ari.Event {
		return &ari.BridgeDestroyed{EventData: base, Bridge: w.Bridge}
	},
	"ChannelDtmfReceived": func(w *commonEvent, base ari.EventData) ari.Event {
		return &ari.ChannelDtmfReceived{EventData: base, Channel: w.Channel.data(), Digit: w.Digit, DurationMs: w.DurationMs}
	},
	"DeviceStateChanged": func(w *commonEvent, base ari.EventData) ari.Event {
		return &ari.DeviceStateChanged{EventData: base, DeviceState: w.DeviceState}
	},
}

// peekType is the value of the first "type" key (Asterisk writes it
// first), or nil.
func peekType(data []byte) []byte {
	const key = `"type":"`
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return nil
	}
	rest := data[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// commonEvent holds the fields of the types decodeCommon decodes; a
// channel is a plain struct, decoded in the same pass.
type commonEvent struct {
	Application string   `json:"application"`
	Dialog      string   `json:"dialog"`
	Node        string   `json:"asterisk_id"`
	Timestamp   wireTime `json:"timestamp"`
	Type        string   `json:"type"`

	Args           []string            `json:"args"`
	Channel        *eventChannel       `json:"channel"`
	ReplaceChannel *eventChannel       `json:"replace_channel"`
	Caller         *eventChannel       `json:"caller"`
	Peer           *eventChannel       `json:"peer"`
	Forwarded      *eventChannel       `json:"forwarded"`
	Dialstatus     string              `json:"dialstatus"`
	Dialstring     string              `json:"dialstring"`
	Forward        string              `json:"forward"`
	Cause          int                 `json:"cause"`
	CauseTxt       string              `json:"cause_txt"`
	Soft           bool                `json:"soft"`
	Bridge         ari.BridgeData      `json:"bridge"`
	Digit          string              `json:"digit"`
	DurationMs     int                 `json:"duration_ms"`
	DeviceState    ari.DeviceStateData `json:"device_state"`
}

// eventChannel is a channel as Asterisk sends it (the library's
// channelDataJSON).
type eventChannel struct {
	Key          *ari.Key          `json:"key"`
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	State        string            `json:"state"`
	Accountcode  string            `json:"accountcode"`
	Caller       *ari.CallerID     `json:"caller"`
	Connected    *ari.CallerID     `json:"connected"`
	Creationtime wireTime          `json:"creationtime"`
	Dialplan     *ari.DialplanCEP  `json:"dialplan"`
	ChannelVars  map[string]string `json:"channelvars"`
}

// wireTime is a time as ari.DateTime.UnmarshalJSON reads it — a JSON
// string in ari.DateFormat, anything else an error — taken straight from
// the decoder's token: the library's method runs encoding/json on each
// value, which was a third of decoding an event on a real Asterisk at
// 80 calls/s (docs/performance.md, "Fewer events, cheaper times").
type wireTime time.Time

// UnmarshalJSONFrom implements go-json-experiment's json.UnmarshalerFrom.
func (t *wireTime) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != '"' {
		return fmt.Errorf("ari: a time is JSON %v, not a string", tok.Kind())
	}
	v, err := time.Parse(ari.DateFormat, tok.String())
	if err != nil {
		return err
	}
	*t = wireTime(v)
	return nil
}

// data is the channel as ari.ChannelData.UnmarshalJSON makes it; an
// absent one is the zero value, as the library leaves it.
func (c *eventChannel) data() ari.ChannelData {
	if c == nil {
		return ari.ChannelData{}
	}
	t, _ := ptypes.TimestampProto(time.Time(c.Creationtime)) // the library ignores the error too
	return ari.ChannelData{Key: c.Key, ID: c.ID, Name: c.Name, State: c.State, Accountcode: c.Accountcode,
		Caller: c.Caller, Connected: c.Connected, Creationtime: t, Dialplan: c.Dialplan, ChannelVars: c.ChannelVars}
}
