package kafka

// ApiVersions, versions 0-4.
//
// Lists the keys and versions in supported. A request at a version newer than we serve is
// answered in v0 form with UNSUPPORTED_VERSION and the full list, so the client can pick
// a version and retry (KIP-511); Decode marks such requests.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleApiVersions(req *Request, m *kmsg.ApiVersionsRequest) {
	resp := m.ResponseKind().(*kmsg.ApiVersionsResponse)
	if vr := supported[req.Key]; req.Version < vr.min || req.Version > vr.max {
		resp.SetVersion(0)
		resp.ErrorCode = kerr.UnsupportedVersion.Code
	}
	resp.ApiKeys = apiKeys()
	n.respond(req, resp)
}
