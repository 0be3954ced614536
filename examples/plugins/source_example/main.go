// Command source_example is a third-party source for veneurd: it reads
// metrics as JSON lines from TCP and UNIX stream sockets. See README.md.
package main

import "github.com/veneurd/veneurd/sdk"

func main() { sdk.Serve(New()) }
