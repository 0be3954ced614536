// Package core is the veneurd daemon: it owns the sockets, the aggregation
// and the flush loop, and runs every source and sink as a plugin process.
//
// The map of the daemon:
//
//	config/      HCL files -> config.Config + hcl.Diagnostics
//	listen/      sockets, opened here and handed to source processes as fds
//	pluginhost/  plugin processes: launch, configure, supervise, gRPC adapters
//	aggregate/   the interval's state, sharded by series key
//	tdigest/     the merging t-digest behind histograms and timers
//
// A sample's path: a client's datagram lands in a socket the daemon opened
// (listen.Pool); the source plugin process that inherited the socket parses
// it and writes samples into packed frames (sdk/frame), several thousand to a
// gRPC message; Server.ingest decodes each frame without allocating and adds
// its samples to the Aggregator. On each wall-clock multiple of the interval,
// Server.flush takes the interval's state, turns it into points (Veneur's
// names: x.count, x.99percentile, ...), encodes them once and streams them in
// chunks to every sink process concurrently, each within a timeout.
//
// Lifecycle: Start opens sockets and launches sinks, then sources. Run
// flushes until its context ends, then stops the sources (they drain what
// they read), flushes a last time and stops the sinks. A plugin process that
// dies is restarted with backoff and its configuration re-sent; a flush that
// failed because its sink died is retried once on the new process.
package core
