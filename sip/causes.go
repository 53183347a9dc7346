package sip

import "github.com/callfloor/callfloor/media"

// causeOf is the cause of a fork whose every branch failed (media.ForkCause).
func causeOf(bs []*branch) media.Cause {
	causes := make([]media.Cause, 0, len(bs))
	for _, b := range bs {
		causes = append(causes, media.CauseFromSIP(b.final))
	}
	return media.ForkCause(causes...)
}
