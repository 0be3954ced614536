package sdk

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"
)

// ServerTLS is the tls block of a source that serves TLS on its tcp://
// listeners. A source's config holds it as a pointer field tagged
// hcl:"tls,block" and calls Config in Configure, so that every source
// that takes TLS reads the same block and reports its problems the same
// way.
type ServerTLS struct {
	CertFile string `hcl:"cert_file" description:"PEM certificate chain"`
	KeyFile  string `hcl:"key_file" description:"PEM private key"`
	// ClientCAFile, when set, makes a certificate signed by this CA
	// mandatory for clients: others are refused at the handshake.
	ClientCAFile string `hcl:"client_ca_file,optional" description:"require client certificates signed by this CA"`
}

// Config loads the certificate, key and client CA into a server
// configuration of TLS 1.2 or later, nil for a nil block. A problem is an
// *AttrError naming the attribute within the block (tls.cert_file,
// tls.key_file, tls.client_ca_file).
//
// The certificate and key are read again when either file changes
// (looked at once a second at most, at a handshake), so that a renewed
// certificate is served from the next connection on, without a restart.
// Files that do not load, such as a pair caught half written, leave the
// last good certificate in use until they do.
func (t *ServerTLS) Config() (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	r := &certReloader{certFile: t.CertFile, keyFile: t.KeyFile}
	if err := r.load(); err != nil {
		if _, cerr := os.Stat(t.CertFile); cerr == nil {
			if _, kerr := os.Stat(t.KeyFile); kerr != nil {
				return nil, &AttrError{Attribute: "tls.key_file", Summary: "Cannot read the TLS key", Detail: kerr.Error() + "."}
			}
		}
		return nil, &AttrError{Attribute: "tls.cert_file", Summary: "Cannot load the TLS certificate", Detail: err.Error() + "."}
	}
	tc := &tls.Config{GetCertificate: r.get, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, &AttrError{Attribute: "tls.client_ca_file", Summary: "Cannot read the client CA", Detail: err.Error() + "."}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &AttrError{Attribute: "tls.client_ca_file", Summary: "Invalid client CA",
				Detail: fmt.Sprintf("%s holds no PEM certificate.", t.ClientCAFile)}
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// certReloader serves a certificate and key pair, read again when their
// files change.
type certReloader struct {
	certFile, keyFile string

	mu              sync.Mutex
	cert            *tls.Certificate
	certMod, keyMod time.Time // of the files the certificate was read from
	looked          time.Time
}

// reloadEvery is how often at most the files are looked at.
const reloadEvery = time.Second

// load reads the pair if its files changed since the last load.
func (r *certReloader) load() error {
	cm, err := modTime(r.certFile)
	if err != nil {
		return err
	}
	km, err := modTime(r.keyFile)
	if err != nil {
		return err
	}
	if r.cert != nil && cm.Equal(r.certMod) && km.Equal(r.keyMod) {
		return nil
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.cert, r.certMod, r.keyMod = &c, cm, km
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.looked) >= reloadEvery {
		r.looked = now
		r.load() // on failure the last good pair stays
	}
	return r.cert, nil
}

func modTime(path string) (time.Time, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}
