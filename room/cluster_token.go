package room

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Node-to-node requests (an edge pulling a room from its origin) carry a
// cluster token: "<node>.<unix seconds>.<hex HMAC-SHA256>" over the node,
// the room and the time, with the cluster secret every node shares. It is
// bound to one room and valid for ClusterTokenTTL either side of its time,
// so a token seen on the wire is of little use elsewhere or later.

// ClusterTokenTTL is how far a cluster token's time may be from now.
const ClusterTokenTTL = time.Minute

// ErrClusterToken: a node-to-node request's token is missing or wrong.
var ErrClusterToken = errors.New("bad cluster token")

// ClusterToken signs a request of node for roomID.
func ClusterToken(secret []byte, node, roomID string, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return node + "." + ts + "." + clusterMAC(secret, node, roomID, ts)
}

// VerifyClusterToken checks tok for roomID and returns the calling node.
func VerifyClusterToken(secret []byte, tok, roomID string, now time.Time) (string, error) {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 || len(secret) == 0 {
		return "", ErrClusterToken
	}
	j := strings.LastIndexByte(tok[:i], '.')
	if j <= 0 {
		return "", ErrClusterToken
	}
	node, ts, mac := tok[:j], tok[j+1:i], tok[i+1:]
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", ErrClusterToken
	}
	if d := now.Sub(time.Unix(sec, 0)); d > ClusterTokenTTL || d < -ClusterTokenTTL {
		return "", ErrClusterToken
	}
	if !hmac.Equal([]byte(mac), []byte(clusterMAC(secret, node, roomID, ts))) {
		return "", ErrClusterToken
	}
	return node, nil
}

func clusterMAC(secret []byte, node, roomID, ts string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("liveroom-cluster\x00" + node + "\x00" + roomID + "\x00" + ts))
	return hex.EncodeToString(m.Sum(nil))
}
