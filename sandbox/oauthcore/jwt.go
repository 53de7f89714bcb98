package oauthcore

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"time"
)

// signingKey is one RSA key per process: generating it costs ~100 ms, and
// tests start many sandboxes. Its JWKS is served by every provider that
// issues ID tokens.
var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
	keyID   string
)

func signer() (*rsa.PrivateKey, string) {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("sandbox: generate RSA key: " + err.Error())
		}
		key = k
		sum := sha256.Sum256(k.N.Bytes())
		keyID = base64.RawURLEncoding.EncodeToString(sum[:8])
	})
	return key, keyID
}

// SignJWT returns an RS256-signed JWT with the given claims.
func SignJWT(claims map[string]any) (string, error) {
	k, kid := signer()
	h, err := json.Marshal(map[string]string{"alg": "RS256", "kid": kid, "typ": "JWT"})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// VerifyJWT checks a JWT made by SignJWT (signature and exp against now)
// and returns its claims.
func VerifyJWT(jwt string, now time.Time) (map[string]any, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	k, _ := signer()
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return nil, err
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, err
	}
	if exp, ok := claims["exp"].(float64); !ok || now.Unix() >= int64(exp) {
		return nil, errors.New("expired")
	}
	return claims, nil
}

// JWKS is the public key set that verifies SignJWT's tokens.
func JWKS() map[string]any {
	k, kid := signer()
	return map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
	}}}
}

// AtHash is the OIDC at_hash of an access token (left half of its SHA-256).
func AtHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
