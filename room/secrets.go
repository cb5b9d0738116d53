package room

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// secretsFile keeps generated secrets.
type secretsFile struct {
	JWTSecret string `json:"jwt_secret"`
	AdminKey  string `json:"admin_key"`
}

// LoadSecrets fills empty auth secrets from dataDir/secrets.json, creating
// it with fresh random values on first start, so that tokens and the admin
// key survive a restart of a node started without configured ones. It
// reports whether the admin key came from that file, so the operator can
// be told where to find it.
func LoadSecrets(auth *AuthConfig, dataDir string) (path string, generated bool, err error) {
	if auth.JWTSecret != "" && auth.AdminKey != "" {
		return "", false, nil
	}
	path = filepath.Join(dataDir, "secrets.json")
	var sf secretsFile
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &sf); err != nil {
			return path, false, fmt.Errorf("%s is corrupt: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return path, false, err
	}
	changed := false
	if sf.JWTSecret == "" {
		sf.JWTSecret, changed = RandomID(32), true
	}
	if sf.AdminKey == "" {
		sf.AdminKey, changed = "ak_"+RandomID(24), true
	}
	if changed {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return path, false, err
		}
		b, _ := json.MarshalIndent(sf, "", "  ")
		if err := WriteFileAtomic(path, b, 0o600); err != nil {
			return path, false, err
		}
	}
	if auth.JWTSecret == "" {
		auth.JWTSecret = sf.JWTSecret
	}
	if auth.AdminKey == "" {
		auth.AdminKey = sf.AdminKey
		generated = true
	}
	return path, generated, nil
}
