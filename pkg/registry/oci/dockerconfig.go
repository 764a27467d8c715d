package oci

import (
	"fmt"

	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// dockerConfigKeychain resolves credentials from one Docker config
// directory, unlike authn.DefaultKeychain, which reads $HOME first.
type dockerConfigKeychain struct{ dir string }

// Resolve implements authn.Keychain.
func (k dockerConfigKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	cf, err := config.Load(k.dir)
	if err != nil {
		return nil, fmt.Errorf("load docker config from %s: %w", k.dir, err)
	}
	for _, key := range []string{target.String(), target.RegistryStr()} {
		if key == name.DefaultRegistry {
			key = authn.DefaultAuthKey
		}
		c, err := cf.GetAuthConfig(key)
		if err != nil {
			return nil, fmt.Errorf("docker config %s: credentials for %s: %w", k.dir, key, err)
		}
		ac := authn.AuthConfig{Username: c.Username, Password: c.Password, Auth: c.Auth,
			IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken}
		if ac != (authn.AuthConfig{}) {
			return authn.FromConfig(ac), nil
		}
	}
	return authn.Anonymous, nil
}
