// Package core is the veneurd daemon: it owns the sockets, the aggregation
// and the flush loop, and runs every source and sink as a plugin process.
//
// The map of the daemon:
//
//	config/      HCL files -> config.Config + hcl.Diagnostics; config.HCL renders it back
//	listen/      sockets, opened here and handed to source processes as fds
//	pluginhost/  plugin processes: launch, configure, supervise, gRPC adapters,
//	             the registry of builtin and external plugin types, flush encoding
//	aggregate/   the interval's state (an internal/state.Table), events,
//	             service checks, and the points a flush emits; on a local, the
//	             fleet's share of it to forward, on a global what it imports
//	forward/     the forwarding protocol between tiers: Forwarder and Receiver
//	discovery/   a tier's members: a static list, or Consul's passing instances
//	telemetry/   veneurd's own metrics under Veneur's names
//	status/      what /api/status, the status page and veneurd top say of the
//	             running pipeline (status.go fills it, sampling rates each second)
//	admin/       the admin HTTP interface: the status page, /api/status, taps
//
// Beside core, in internal/: state/ (an interval's mergeable series state and
// its packed records), tdigest/, and proc/ (the one reader of /proc, through
// procfs: socket drops here, process figures for veneurd bench).
//
// A sample's path: a client's datagram lands in a socket the daemon opened
// (listen.Pool). The source plugin process that inherited the socket reads it
// with recvmmsg, parses it, and its sdk.Writer aggregates the sample at once
// into the interval's state in that process (internal/state: counters
// summed, gauges last-write, t-digests, HyperLogLogs). Nothing crosses the
// process boundary per sample. On each wall-clock multiple of the interval,
// Server.flush cuts every source (SourceProcess.Cut): each streams its state
// back on the cut's call as packed records, a few per series, and
// Server.mergeState merges them into the Aggregator, all in flush.go. The
// Aggregator then emits the interval's points (Veneur's names: x.count,
// x.99percentile, ...), a shard at a time, through the pipeline's routing
// (route.go, with the rules of plugins/routers/match): each point is packed
// once (pluginhost.Chunker, sdk.PointPacker) into the chunks of the set of
// sinks its metric_sink_routing rules choose, chunks those sinks share; a
// sink with a tag policy gets its own copy of its points, as the policy
// leaves them. The chunks stream to every sink process concurrently, each
// sink within its flush_timeout. Sinks receive a large flush part by part.
// Drop rules and series limits act earlier: every source process applies
// them as it reads (sdk's Writer, through its table's admit), so a dropped
// sample is never aggregated, and a flood of new series costs a source a
// lookup per sample, not memory. A source's Run stream carries the rest: counts, events
// and service checks (Server.ingest). The t-digest and the state records
// live in internal/ because both sides of the boundary use them and sdk must
// not import core.
//
// The server drives its plugins through the Plugins, SourceProcess and
// SinkProcess interfaces: pluginhost implements them with supervised
// processes, and core's own tests with in-process fakes, under
// testing/synctest.
//
// Sockets are shared: the daemon and the source processes hold the same open
// file descriptions. None of them may put a socket in its Go runtime's
// netpoller (each datagram would wake every such runtime) or make it blocking
// (the others' reads would block): the daemon holds its sockets detached
// (listen.detach), and sources read datagrams with recvmmsg and poll(2).
//
// Lifecycle: Start opens sockets and launches sinks, then sources. Run
// flushes until its context ends, then stops the sources (they hand over the
// state they hold), flushes a last time and stops the sinks, all within
// shutdown_timeout: at its deadline, flushes still under way are cancelled
// whatever their sinks' flush_timeout. A source process that dies loses the
// state it held: at most one interval of what it read. A plugin process that
// dies is restarted with backoff and its configuration re-sent; a flush that
// failed because its sink died is retried once on the new process, or held
// and delivered before the next flush when the process is not back in time.
//
// Seeing it: Server.Status describes every block, the rates along the
// pipeline's edges and the last flush (its top names estimated by the
// Aggregator as it emits). A tap (tap.go) copies what flows through one block
// to a bounded buffer: a sink's chunks decoded beside its delivery, or the
// samples a source process copies as it reads them; a reader that falls
// behind loses lines, never data.
//
// Reload (Apply): the new config is loaded and its new plugin processes
// started before anything changes. Blocks are matched by address and config
// hash; unchanged plugins keep their processes. A changed source gets a new
// process on the same sockets, which reads them alongside the old one until
// the old one has drained; the pool's reference counts close the sockets no
// source holds any more. Aggregation settings apply after the next flush, so
// the interval in progress flushes whole.
package core
