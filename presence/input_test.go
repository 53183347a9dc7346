package presence

import (
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"An Nguyễn", true}, {"Sales 2", true}, {strings.Repeat("é", MaxNameLen), true},
		{"", false}, {"   ", false}, {"a\x00b", false}, {"a\nb", false}, {"a\u200bb", false},
		{"a\ufffdb", false}, {"a\xffb", false}, {strings.Repeat("x", MaxNameLen+1), false},
		{strings.Repeat("x", 500<<10), false},
	} {
		if err := CheckName("name", tc.in, MaxNameLen); (err == nil) != tc.ok {
			t.Errorf("CheckName(%.20q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestCheckDevice(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"PJSIP/a1", true}, {"user/a1", true}, {"sofia/gateway/trunk/+84901000011", true},
		{"sip:a1@127.0.0.1:5060;transport=tcp", true},
		{"", false}, {"a b", false}, {"a\r\nVia: x", false}, {"a<b>", false}, {strings.Repeat("a", 257), false},
	} {
		if err := CheckDevice("device", tc.in); (err == nil) != tc.ok {
			t.Errorf("CheckDevice(%.20q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
