package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/delivery"
)

// Version is the sink's version, shown by `veneurd plugins`.
const Version = "1.0.0"

// Config is the kafka sink's block.
type Config struct {
	Brokers     []string      `hcl:"brokers" description:"seed brokers, host:port"`
	Topic       string        `hcl:"topic" description:"the topic points are produced to"`
	EventTopic  string        `hcl:"event_topic,optional" description:"the topic events are produced to; none: events are not sent"`
	Format      string        `hcl:"format,optional" description:"\"json\" (default: the lines of the localfile sink) or \"protobuf\" (point.proto)"`
	Compression string        `hcl:"compression,optional" description:"of record batches: \"none\", \"gzip\", \"snappy\" (default), \"lz4\" or \"zstd\""`
	ClientID    string        `hcl:"client_id,optional" description:"the client id brokers see (default \"veneurd\")"`
	MaxPerBody  int           `hcl:"max_records_per_produce,optional" description:"most records in one produce call (default 10000)"`
	TLS         *delivery.TLS `hcl:"tls,block" description:"TLS to the brokers"`
	delivery.Options
}

// Sink produces points (and events) to Kafka, keyed by series.
type Sink struct {
	env      sdk.Env
	cfg      Config
	settings delivery.Settings
	format   Format
	codec    kgo.CompressionCodec

	delivery.Running // guards the encoder: one flush at a time
	enc              Encoder
	points           *delivery.Dest
	events           *delivery.Dest
}

// New returns a kafka sink.
func New() *Sink { return &Sink{} }

// Version reports the sink's version.
func (s *Sink) Version() string { return Version }

// Config returns the defaults.
func (s *Sink) Config() any {
	return &Config{Format: "json", Compression: "snappy", ClientID: "veneurd", MaxPerBody: 10000}
}

var codecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

// Configure checks cfg.
func (s *Sink) Configure(_ context.Context, env sdk.Env, cfg any) error {
	c := *cfg.(*Config)
	settings, err := c.Options.Check()
	_, terr := c.TLS.Config()
	errs := []error{err, terr}
	if len(c.Brokers) == 0 {
		errs = append(errs, &sdk.AttrError{Attribute: "brokers", Summary: "No brokers",
			Detail: "Give at least one seed broker, such as \"kafka-1:9092\"."})
	}
	for _, b := range c.Brokers {
		if host, port, err := net.SplitHostPort(b); err != nil || host == "" || port == "" {
			errs = append(errs, &sdk.AttrError{Attribute: "brokers", Summary: "Invalid broker",
				Detail: fmt.Sprintf("A broker is host:port, such as \"kafka-1:9092\", not %q.", b)})
		}
	}
	if c.Topic == "" {
		errs = append(errs, &sdk.AttrError{Attribute: "topic", Summary: "Empty topic", Detail: "Name the topic points are produced to."})
	}
	switch c.Format {
	case "json":
		s.format = JSON
	case "protobuf":
		s.format = Protobuf
	default:
		errs = append(errs, &sdk.AttrError{Attribute: "format", Summary: "Unknown format",
			Detail: fmt.Sprintf("format is \"json\" or \"protobuf\", not %q.", c.Format)})
	}
	codec, ok := codecs[c.Compression]
	if !ok {
		errs = append(errs, &sdk.AttrError{Attribute: "compression", Summary: "Unknown compression",
			Detail: fmt.Sprintf("compression is \"none\", \"gzip\", \"snappy\", \"lz4\" or \"zstd\", not %q.", c.Compression)})
	}
	if c.MaxPerBody <= 0 {
		errs = append(errs, &sdk.AttrError{Attribute: "max_records_per_produce", Summary: "Invalid produce size",
			Detail: fmt.Sprintf("max_records_per_produce must be positive, not %d.", c.MaxPerBody)})
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// A Dest names the topic of a payload; no URL and no compression: the
	// client compresses record batches itself.
	s.points = &delivery.Dest{URL: c.Topic}
	if c.EventTopic != "" {
		s.events = &delivery.Dest{URL: c.EventTopic}
	}
	s.env, s.cfg, s.settings, s.codec = env, c, settings, codec
	s.enc.Format = s.format
	return nil
}

// Start creates the client; it connects to the brokers when it first
// produces.
func (s *Sink) Start(context.Context) error {
	tc, err := s.cfg.TLS.Config()
	if err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ClientID(s.cfg.ClientID),
		kgo.ProducerBatchCompression(s.codec),
		// The delivery queue retries and buffers across flushes; the
		// client gives up on a produce after the timeout, so that a
		// broker outage reaches the queue.
		kgo.RecordDeliveryTimeout(s.settings.Timeout),
		kgo.ProduceRequestTimeout(s.settings.Timeout),
		kgo.MaxBufferedRecords(2 * s.cfg.MaxPerBody * s.settings.MaxInFlight),
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	s.Begin(producer{client}, delivery.QueueConfig{Settings: s.settings, Stats: s.env.Stats, Log: s.env.Logger}, client.Close)
	return nil
}

// Flush encodes f into records and queues them; it returns once they are
// queued, not produced.
func (s *Sink) Flush(_ context.Context, f *sdk.Flush) error {
	return s.Do(func(q *delivery.Queue) {
		delivery.Encode(q, s.points, &s.enc, f.Points, delivery.Limits{Bytes: maxBodyBytes, Items: s.cfg.MaxPerBody},
			(*Encoder).Append)
		if s.events != nil && len(f.Events) > 0 {
			s.enc.Reset()
			for i := range f.Events {
				s.enc.AppendEvent(&f.Events[i], f.Timestamp)
			}
			q.Send(s.events, s.enc.Body(), 0)
			s.enc.Reset()
		}
	})
}

// maxBodyBytes bounds the records of one produce call.
const maxBodyBytes = 4 << 20

// Stop produces what is buffered, within ctx, and closes the client.
func (s *Sink) Stop(ctx context.Context) error {
	s.End(ctx)
	return nil
}

// producer is the delivery.Transport of Kafka: a payload's records are
// produced to its topic, and the call returns once every broker concerned
// acknowledged them.
type producer struct{ client *kgo.Client }

// wrap classifies a produce error: what the client deems retriable (a
// broker down, a leader moving, a timeout) is retried by the queue; any
// other (a record too large, a topic refused) drops the payload.
func (producer) wrap(err error) error {
	if kerr.IsRetriable(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrRecordTimeout) ||
		errors.Is(err, kgo.ErrRecordRetries) {
		return delivery.Retry(err, 0)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return delivery.Retry(err, 0)
	}
	return err
}

// Send produces pl's records to its topic. Should only some of them fail,
// the whole payload is retried: a consumer may then read a point twice, the
// same series (key) and time.
func (p producer) Send(ctx context.Context, pl *delivery.Payload) error {
	var recs []*kgo.Record
	if !Split(pl.Body, func(k, v []byte) bool {
		recs = append(recs, &kgo.Record{Topic: pl.Dest.URL, Key: k, Value: v})
		return true
	}) {
		return errors.New("kafka: a corrupt batch of records") // cannot happen: the sink wrote it
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // the client's own timeouts come first
	defer cancel()
	if err := p.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return p.wrap(err)
	}
	return nil
}
