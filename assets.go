// Package canarybot holds files embedded into the binary: the seed
// manifests that `canarybot demo` deploys into its GitOps repo.
package canarybot

import "embed"

// Manifests is the manifests/ tree: bases, overlays and the bot-owned
// components in their initial state.
//
//go:embed manifests
var Manifests embed.FS
