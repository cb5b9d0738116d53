package room

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// NodeConfig is the `node:` section: who this node is to the others.
type NodeConfig struct {
	ID string `yaml:"id"` // default: host name
	// AdvertiseURL is the base URL other nodes reach this node's HTTP API
	// at (edges pull media through it); default http://<http.listen>, with
	// 127.0.0.1 for an unspecified host.
	AdvertiseURL string `yaml:"advertise_url"`
	// ClusterSecret authenticates node-to-node requests; default: derived
	// from auth.jwt_secret, which every node of a cluster shares anyway.
	ClusterSecret string `yaml:"cluster_secret"`
}

// SetDefaults fills in the node id.
func (c *NodeConfig) SetDefaults() {
	if c.ID == "" {
		c.ID, _ = os.Hostname()
	}
}

// Validate checks the section; errors name the key.
func (c NodeConfig) Validate() error {
	if u := c.AdvertiseURL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return errors.New("node.advertise_url: must be an http:// or https:// URL")
		}
	}
	if s := c.ClusterSecret; s != "" && len(s) < 16 {
		return errors.New("node.cluster_secret: must be at least 16 characters")
	}
	return nil
}

// Secret is node.cluster_secret, or one derived from the JWT secret that
// every node of the cluster shares.
func (c NodeConfig) Secret(jwtSecret string) []byte {
	if c.ClusterSecret != "" {
		return []byte(c.ClusterSecret)
	}
	m := hmac.New(sha256.New, []byte(jwtSecret))
	m.Write([]byte("liveroom cluster secret"))
	return m.Sum(nil)
}

// Advertise is the base URL other nodes reach this one at: the configured
// one, else the HTTP listener's address (127.0.0.1 for an unspecified
// host, which only works while the nodes share a machine).
func (c NodeConfig) Advertise(addr net.Addr) string {
	if c.AdvertiseURL != "" {
		return strings.TrimRight(c.AdvertiseURL, "/")
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	host := "127.0.0.1"
	if !tcp.IP.IsUnspecified() {
		host = tcp.IP.String()
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}
