package canary

import (
	"fmt"
	"strings"
)

// movedTag says why c is not deployed when its version label (a tag)
// named other content before: the stable, the candidate in canary or a
// reverted artifact carried the same label with another URI. It returns
// "" when the label is new or unchanged. A moved tag is reported and never
// deployed: whoever moved it pushes a new version instead, or, for a
// reverted one, asks for a retry.
func movedTag(c Artifact, s StateStatus) string {
	if c.Version == "" {
		return ""
	}
	known := append([]Artifact{s.Stable, s.Candidate}, s.Failed...)
	for _, k := range known {
		if k.Version == c.Version && k.URI != "" && k.URI != c.URI {
			return fmt.Sprintf("tag %s moved from %s to %s; not deploying a moved tag", c.Version, pinOf(k.URI), pinOf(c.URI))
		}
	}
	return ""
}

// pinOf returns the immutable part of a URI for messages: the digest of
// an OCI reference, else the whole URI.
func pinOf(uri string) string {
	if i := strings.LastIndexByte(uri, '@'); i >= 0 && strings.HasPrefix(uri, "oci://") {
		return uri[i+1:]
	}
	return uri
}
