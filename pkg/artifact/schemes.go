package artifact

import (
	"fmt"
	"strings"
)

// parseOCI reads host[:port]/path[:tag][@digest], the part after "oci://".
func parseOCI(s, body string) (Ref, error) {
	name, digest, hasDigest := strings.Cut(body, "@")
	host, path, ok := strings.Cut(name, "/")
	if host == "" {
		return Ref{}, invalid(s, "empty registry host; want oci://host/path@sha256:<digest>")
	}
	if !ok || path == "" || strings.HasPrefix(path, ":") {
		return Ref{}, invalid(s, "empty repository path; want oci://host/path@sha256:<digest>")
	}
	r := Ref{Scheme: SchemeOCI}
	if i := strings.LastIndexByte(path, ':'); i >= 0 {
		path, r.Tag = path[:i], path[i+1:]
		if err := checkTag(r.Tag); err != nil {
			return Ref{}, invalid(s, "%s", err.Error())
		}
	}
	var err error
	if r.Host, err = checkHost(host); err != nil {
		return Ref{}, invalid(s, "%s", err.Error())
	}
	if err := checkRepoPath(path); err != nil {
		return Ref{}, invalid(s, "%s", err.Error())
	}
	r.Path = path
	if !hasDigest {
		return Ref{}, &MutableError{Ref: s, Reason: ociMutableReason(r)}
	}
	if err := checkDigest(digest); err != nil {
		return Ref{}, invalid(s, "%s", err.Error())
	}
	r.Digest = digest
	return r, nil
}

// ociMutableReason explains an OCI reference without a digest.
func ociMutableReason(r Ref) string {
	pin := "pin it as oci://" + r.Repository() + "@sha256:<digest>"
	if r.Tag == "" {
		return "no digest, so it means whatever tag \"latest\" points at; " + pin
	}
	return fmt.Sprintf("tag %q can move to another digest; %s", r.Tag, pin)
}

// parseMLflow reads <name>/<version>, the part after "models:".
func parseMLflow(s, rest string) (Ref, error) {
	body, ok := strings.CutPrefix(rest, "/")
	if !ok || strings.HasPrefix(body, "/") {
		return Ref{}, invalid(s, "want models:/<name>/<version>")
	}
	if name, alias, ok := strings.Cut(body, "@"); ok {
		if err := checkMLflowName(name); err != nil {
			return Ref{}, invalid(s, "%s", err.Error())
		}
		if alias == "" {
			return Ref{}, invalid(s, "empty alias after @")
		}
		return Ref{}, &MutableError{Ref: s, Reason: fmt.Sprintf(
			"alias %q can be reassigned to another version; pin it as models:/%s/<version>", alias, name)}
	}
	name, version, hasVersion := strings.Cut(body, "/")
	if err := checkMLflowName(name); err != nil {
		return Ref{}, invalid(s, "%s", err.Error())
	}
	if !hasVersion {
		return Ref{}, &MutableError{Ref: s, Reason: fmt.Sprintf(
			"no version; pin it as models:/%s/<version>", name)}
	}
	if strings.Contains(version, "/") {
		return Ref{}, invalid(s, "want models:/<name>/<version>, with no further path")
	}
	if isMLflowStage(version) {
		return Ref{}, &MutableError{Ref: s, Reason: fmt.Sprintf(
			"%q names whichever version is there when read; pin it as models:/%s/<version>", version, name)}
	}
	if err := checkDecimal("version", version); err != nil {
		return Ref{}, invalid(s, "%s", err.Error())
	}
	return Ref{Scheme: SchemeMLflow, Path: name, Version: version}, nil
}

// isMLflowStage reports whether v is "latest" or a registry stage.
func isMLflowStage(v string) bool {
	switch strings.ToLower(v) {
	case "latest", "none", "staging", "production", "archived":
		return true
	}
	return false
}

// parseS3 reads bucket/key[?versionId=id], the part after "s3://".
func parseS3(s, body string) (Ref, error) {
	main, query, hasQuery := strings.Cut(body, "?")
	bucket, key, _ := strings.Cut(main, "/")
	if err := checkBucket(bucket, 63); err != nil {
		return Ref{}, invalid(s, "%s", err.Error())
	}
	if err := checkKey(key); err != nil {
		return Ref{}, invalid(s, "%s", err.Error())
	}
	r := Ref{Scheme: SchemeS3, Host: bucket, Path: key}
	pin := "pin it as " + r.String() + "?versionId=<id>"
	if !hasQuery {
		return Ref{}, &MutableError{Ref: s, Reason: "no versionId, so the object can be overwritten in place; " + pin}
	}
	id, err := s3VersionID(query)
	if err != nil {
		return Ref{}, invalid(s, "%s", err.Error())
	}
	if id == "null" {
		return Ref{}, &MutableError{Ref: s, Reason: "versionId \"null\" is the unversioned object, which can be overwritten; " + pin}
	}
	if strings.HasSuffix(key, "/") {
		return Ref{}, invalid(s, "versionId pins one object, not the prefix %q", key)
	}
	r.Version = id
	return r, nil
}

// s3VersionID reads the query "versionId=<id>".
func s3VersionID(query string) (string, error) {
	param, value, _ := strings.Cut(query, "=")
	switch {
	case strings.Contains(query, "&"):
		return "", fmt.Errorf("query %q: only a single versionId parameter is allowed", query)
	case param != "versionId":
		return "", fmt.Errorf("unknown query parameter %q; only versionId is allowed", param)
	case value == "":
		return "", fmt.Errorf("empty versionId")
	case len(value) > 1024:
		return "", fmt.Errorf("versionId is %d bytes long, over 1024", len(value))
	}
	for _, c := range value {
		if !isAlnum(c) && !strings.ContainsRune("._-+/=", c) {
			return "", fmt.Errorf("versionId has invalid character %q", c)
		}
	}
	return value, nil
}

// parseGCS reads bucket/key[#generation], the part after "gs://".
func parseGCS(s, body string) (Ref, error) {
	main, gen, hasGen := strings.Cut(body, "#")
	bucket, key, _ := strings.Cut(main, "/")
	if err := checkBucket(bucket, 222); err != nil {
		return Ref{}, invalid(s, "%s", err.Error())
	}
	if err := checkKey(key); err != nil {
		return Ref{}, invalid(s, "%s", err.Error())
	}
	r := Ref{Scheme: SchemeGCS, Host: bucket, Path: key}
	if !hasGen {
		return Ref{}, &MutableError{Ref: s, Reason: "no generation, so the object can be overwritten in place; pin it as " +
			r.String() + "#<generation>"}
	}
	if err := checkDecimal("generation", gen); err != nil {
		return Ref{}, invalid(s, "%s", err.Error())
	}
	if strings.HasSuffix(key, "/") {
		return Ref{}, invalid(s, "a generation pins one object, not the prefix %q", key)
	}
	r.Version = gen
	return r, nil
}
