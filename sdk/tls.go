package sdk

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
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
// tls.client_ca_file).
func (t *ServerTLS) Config() (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, &AttrError{Attribute: "tls.cert_file", Summary: "Cannot load the TLS certificate", Detail: err.Error() + "."}
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
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
