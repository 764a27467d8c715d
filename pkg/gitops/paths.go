package gitops

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/canarybot/canarybot/pkg/canary"
)

// ErrUnsafePath marks a change path that could write outside the work tree
// or into Git's own files. Errors carrying it are also canary.Terminal.
var ErrUnsafePath = errors.New("unsafe repo path")

// CheckPath reports whether p is a safe repo-relative slash path for a
// file canarybot writes: not empty, not absolute, in clean form, with no
// "." or ".." element, no backslash or control character, and no ".git"
// element in any case.
func CheckPath(p string) error {
	reason := pathProblem(p)
	if reason == "" {
		return nil
	}
	return canary.Terminal(fmt.Errorf("%w %q: %s", ErrUnsafePath, p, reason))
}

func pathProblem(p string) string {
	switch {
	case p == "":
		return "empty"
	case strings.HasPrefix(p, "/") || filepath.IsAbs(p) || filepath.VolumeName(p) != "":
		return "absolute"
	case strings.ContainsRune(p, '\\'):
		return "contains a backslash"
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "contains a control character"
	}
	for _, part := range strings.Split(p, "/") {
		switch {
		case part == "..":
			return "escapes the repository"
		case part == "." || part == "":
			return "not in clean form"
		case isDotGit(part):
			return "inside .git"
		}
	}
	if path.Clean(p) != p {
		return "not in clean form"
	}
	return ""
}

// isDotGit matches ".git" as file systems that fold case, trailing dots
// and spaces, or 8.3 names may resolve it.
func isDotGit(part string) bool {
	s := strings.ToLower(strings.TrimRight(part, ". "))
	return s == ".git" || s == "git~1"
}
