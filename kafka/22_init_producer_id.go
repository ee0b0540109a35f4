package kafka

// InitProducerId, versions 0-5, for idempotent producers.
//
// Each call hands out a fresh producer id at epoch 0, as Kafka does for a producer without
// a transactional id (an id and epoch sent by the client, KIP-360, are not needed then).
// Ids are never reused across restarts: they are reserved from a block recorded durably
// in the data dir before any of them is handed out. Transactions are a later issue: a
// transactional id gets INVALID_REQUEST, which the client reports (COORDINATOR_NOT_AVAILABLE
// would make it retry forever).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/log"
)

// pidBlockSize is how many producer ids one durable reservation covers.
const pidBlockSize = 1000

const pidFile = "producer-id-block"

func (n *Node) handleInitProducerID(req *Request, m *kmsg.InitProducerIDRequest) {
	resp := m.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if m.TransactionalID != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		n.respond(req, resp)
		return
	}
	id, err := n.pids.take(n.fs, n.cfg.DataDir)
	if n.cl != nil {
		// Producer ids must be unique in the cluster: each node hands out its own range.
		id += int64(RaftID(n.cfg.NodeID)) << 40
	}
	if err != nil {
		resp.ErrorCode = kerr.KafkaStorageError.Code
		n.respond(req, resp)
		return
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	n.respond(req, resp)
}

// pidBlock hands out producer ids from a durably reserved range.
// Invariant: next <= end; ids in [next, end) are reserved and unused.
type pidBlock struct {
	next, end int64
}

// load reads the last reservation: ids below its end may have been handed out.
func (b *pidBlock) load(fsys log.FS, dir string) error {
	f, err := fsys.Open(path.Join(dir, pidFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kafka: producer id block: %w", err)
	}
	defer f.Close()
	var buf [8]byte
	if _, err := f.ReadAt(buf[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("kafka: producer id block: %w", err)
	}
	b.next = int64(binary.BigEndian.Uint64(buf[:]))
	b.end = b.next
	return nil
}

// take returns an unused producer id, reserving a new block durably when needed. The
// reservation blocks on fsync once per pidBlockSize ids.
func (b *pidBlock) take(fsys log.FS, dir string) (int64, error) {
	if b.next == b.end {
		end := b.end + pidBlockSize
		tmp := path.Join(dir, pidFile+".tmp")
		f, err := fsys.Create(tmp)
		if err != nil {
			return -1, err
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(end))
		if _, err := f.Write(buf[:]); err != nil {
			f.Close()
			return -1, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return -1, err
		}
		if err := f.Close(); err != nil {
			return -1, err
		}
		if err := fsys.Rename(tmp, path.Join(dir, pidFile)); err != nil {
			return -1, err
		}
		if err := fsys.SyncDir(dir); err != nil {
			return -1, err
		}
		b.end = end
	}
	id := b.next
	b.next++
	return id, nil
}
