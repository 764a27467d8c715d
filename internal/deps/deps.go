// Package deps keeps the design card's one dependency that has no user yet,
// go-github (the GitHub App, a later issue), resolving in go.mod with the
// others.
package deps

import (
	_ "github.com/google/go-github/v60/github"
)
