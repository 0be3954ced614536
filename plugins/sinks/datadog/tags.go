package datadog

import (
	"strings"

	"github.com/veneurd/veneurd/internal/textenc"
)

// Veneur's and the Datadog agent's magic tags.
const (
	hostPrefix   = "host:"
	devicePrefix = "device:"
)

// magic is what a point's magic tags say.
type magic struct {
	host, device         string // the last host:X and device:X (X may be empty)
	hostTags, deviceTags int    // how many tags are host:..., device:...
}

// scanMagic reads tags for host: and device: tags; as in Veneur's
// finalizeMetrics, the last of each wins.
func scanMagic(tags []string) (m magic) {
	for _, t := range tags {
		if strings.HasPrefix(t, hostPrefix) {
			m.host = t[len(hostPrefix):]
			m.hostTags++
		} else if strings.HasPrefix(t, devicePrefix) {
			m.device = t[len(devicePrefix):]
			m.deviceTags++
		}
	}
	return m
}

// hostOr returns the host a point is sent with: that of its host: tag, else
// its Hostname.
func (m *magic) hostOr(hostname string) string {
	if m.host != "" {
		return m.host
	}
	return hostname
}

// appendTags appends ,"tags":[...] with tags, leaving out host: tags when
// skipHost and device: tags when skipDevice; kept is how many tags are left,
// and nothing is appended when it is 0 unless always.
func appendTags(b []byte, tags []string, skipHost, skipDevice bool, kept int, always bool) []byte {
	if kept == 0 && !always {
		return b
	}
	b = append(b, `,"tags":[`...)
	first := true
	for _, t := range tags {
		if skipHost && strings.HasPrefix(t, hostPrefix) || skipDevice && strings.HasPrefix(t, devicePrefix) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = textenc.AppendJSONString(b, t)
	}
	return append(b, ']')
}
