package kafka

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"chronik/core/group"
	"chronik/core/log"
	"chronik/core/producer"
	"chronik/core/record"
	"chronik/core/replica"
)

// Errors the handlers classify into Kafka codes.
var (
	errUnknownTopic             = errors.New("kafka: unknown topic or partition")
	errMessageTooLarge          = errors.New("kafka: batch larger than max.message.bytes")
	errNotEnoughISR             = errors.New("kafka: not enough in-sync replicas")
	errFencedEpoch              = errors.New("kafka: fenced leader epoch")
	errUnknownEpoch             = errors.New("kafka: unknown leader epoch")
	errInvalidPartition         = errors.New("kafka: invalid partition count")
	errInvalidRF                = errors.New("kafka: invalid replication factor")
	errTopicExists              = errors.New("kafka: topic already exists")
	errBadRequest               = errors.New("kafka: invalid request")
	errInvalidReplicaAssignment = errors.New("kafka: invalid replica assignment")
	errOffsetOutOfRange         = log.ErrOffsetOutOfRange
	// Cluster mode.
	errNotLeader          = errors.New("kafka: not the leader of the partition")
	errLeaderNotAvailable = errors.New("kafka: the partition has no leader yet")
	errTimedOut           = errors.New("kafka: request timed out")
	errNotController      = errors.New("kafka: the metadata group has no leader")
	errCoordinatorLoading = errors.New("kafka: the coordinator is loading the group's partition")
)

// codeTable is the one place errors become Kafka error codes.
var codeTable = []struct {
	err  error
	code *kerr.Error
}{
	{errUnknownTopic, kerr.UnknownTopicOrPartition},
	{errNotLeader, kerr.NotLeaderForPartition},
	{errLeaderNotAvailable, kerr.LeaderNotAvailable},
	{errTimedOut, kerr.RequestTimedOut},
	{errNotController, kerr.NotController},
	{errCoordinatorLoading, kerr.CoordinatorLoadInProgress},
	{replica.ErrNotLeader, kerr.NotLeaderForPartition},
	{replica.ErrLost, kerr.NotLeaderForPartition},
	{replica.ErrProposalDropped, kerr.RequestTimedOut},
	{replica.ErrFailed, kerr.KafkaStorageError},
	{replica.ErrTooFewAfterAppend, kerr.NotEnoughReplicasAfterAppend},
	{replica.ErrControlBatch, kerr.InvalidRecord},
	{errMessageTooLarge, kerr.MessageTooLarge},
	{errNotEnoughISR, kerr.NotEnoughReplicas},
	{errFencedEpoch, kerr.FencedLeaderEpoch},
	{errUnknownEpoch, kerr.UnknownLeaderEpoch},
	{errInvalidPartition, kerr.InvalidPartitions},
	{errInvalidRF, kerr.InvalidReplicationFactor},
	{errTopicExists, kerr.TopicAlreadyExists},
	{errBadRequest, kerr.InvalidRequest},
	{errInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{errInvalidTopic, kerr.InvalidTopicException},
	{errBadConfig, kerr.InvalidConfig},
	{errNotOneBatch, kerr.InvalidRecord},
	{record.ErrTruncated, kerr.CorruptMessage},
	{record.ErrCorrupt, kerr.CorruptMessage},
	{record.ErrInvalid, kerr.InvalidRecord},
	{record.ErrUnsupportedMagic, kerr.UnsupportedForMessageFormat},
	{record.ErrUnsupportedCodec, kerr.UnsupportedCompressionType},
	{producer.ErrOutOfOrder, kerr.OutOfOrderSequenceNumber},
	{producer.ErrFenced, kerr.InvalidProducerEpoch},
	{log.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{log.ErrFailed, kerr.KafkaStorageError},
	{group.ErrInvalidGroupID, kerr.InvalidGroupID},
	{group.ErrInvalidSessionTimeout, kerr.InvalidSessionTimeout},
	{group.ErrUnknownMemberID, kerr.UnknownMemberID},
	{group.ErrMemberIDRequired, kerr.MemberIDRequired},
	{group.ErrIllegalGeneration, kerr.IllegalGeneration},
	{group.ErrRebalanceInProgress, kerr.RebalanceInProgress},
	{group.ErrInconsistentGroupProtocol, kerr.InconsistentGroupProtocol},
	{group.ErrGroupMaxSizeReached, kerr.GroupMaxSizeReached},
	{group.ErrFencedInstanceID, kerr.FencedInstanceID},
	{group.ErrGroupIDNotFound, kerr.GroupIDNotFound},
	{group.ErrNonEmptyGroup, kerr.NonEmptyGroup},
	{group.ErrGroupSubscribedToTopic, kerr.GroupSubscribedToTopic},
	{group.ErrOffsetMetadataTooLarge, kerr.OffsetMetadataTooLarge},
	{group.ErrCoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
	{group.ErrNotCoordinator, kerr.NotCoordinator},
	{errCommitTooLarge, kerr.InvalidCommitOffsetSize},
}

// errCodeOf maps an error to its Kafka code; 0 for nil, KAFKA_STORAGE_ERROR for an
// unclassified storage error, UNKNOWN_SERVER_ERROR otherwise.
func errCodeOf(err error) int16 {
	if err == nil {
		return 0
	}
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return e.code.Code
		}
	}
	return kerr.UnknownServerError.Code
}

// errMessage is err's text for responses that carry an ErrorMessage.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
