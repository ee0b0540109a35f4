package group

import "errors"

// Errors the coordinator answers with. Each one is a Kafka error code; the kafka package
// maps them in its one code table.
var (
	ErrInvalidGroupID            = errors.New("group: invalid group id")
	ErrInvalidSessionTimeout     = errors.New("group: session timeout outside the broker's bounds")
	ErrUnknownMemberID           = errors.New("group: unknown member id")
	ErrMemberIDRequired          = errors.New("group: member id required: rejoin with the id given")
	ErrIllegalGeneration         = errors.New("group: illegal generation")
	ErrRebalanceInProgress       = errors.New("group: rebalance in progress")
	ErrInconsistentGroupProtocol = errors.New("group: inconsistent group protocol")
	ErrGroupMaxSizeReached       = errors.New("group: group max size reached")
	ErrFencedInstanceID          = errors.New("group: fenced instance id")
	ErrGroupIDNotFound           = errors.New("group: group id not found")
	ErrNonEmptyGroup             = errors.New("group: group is not empty")
	ErrGroupSubscribedToTopic    = errors.New("group: group is subscribed to the topic")
	ErrOffsetMetadataTooLarge    = errors.New("group: offset metadata too large")
	ErrCoordinatorNotAvailable   = errors.New("group: coordinator not available")
	ErrNotCoordinator            = errors.New("group: not the coordinator")
)
