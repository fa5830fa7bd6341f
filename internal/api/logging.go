package api

import (
	"context"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/store"
)

type destinationInput struct {
	S3 *struct {
		BucketName *string `json:"bucketName"`
	} `json:"s3"`
	CloudWatchLogs *struct {
		LogGroupName *string `json:"logGroupName"`
	} `json:"cloudWatchLogs"`
	Firehose *struct {
		DeliveryStreamName *string `json:"deliveryStreamName"`
	} `json:"firehose"`
}

// destination validates the union DestinationConfiguration: exactly one member.
func validateDestination(v *validator, in *destinationInput, required bool) chat.Destination {
	const name = "destinationConfiguration"
	if in == nil {
		if required {
			v.add(name, "is required")
		}
		return chat.Destination{}
	}
	set := 0
	var d chat.Destination
	if in.S3 != nil {
		set++
		v.str(name+".s3.bucketName", in.S3.BucketName, true, 3, 63, patBucketName)
		d.S3BucketName = deref(in.S3.BucketName)
	}
	if in.CloudWatchLogs != nil {
		set++
		v.str(name+".cloudWatchLogs.logGroupName", in.CloudWatchLogs.LogGroupName, true, 1, 512, patLogGroupName)
		d.CloudWatchLogGroupName = deref(in.CloudWatchLogs.LogGroupName)
	}
	if in.Firehose != nil {
		set++
		v.str(name+".firehose.deliveryStreamName", in.Firehose.DeliveryStreamName, true, 1, 64, patDeliveryStream)
		d.FirehoseDeliveryStreamName = deref(in.Firehose.DeliveryStreamName)
	}
	if set != 1 {
		v.add(name, "must set exactly one of s3, cloudWatchLogs, firehose")
	}
	return d
}

type createLoggingConfigurationInput struct {
	Name                     *string           `json:"name"`
	DestinationConfiguration *destinationInput `json:"destinationConfiguration"`
	Tags                     map[string]string `json:"tags"`
}

func (h *Handler) createLoggingConfiguration(c *call) (any, error) {
	var in createLoggingConfigurationInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	v.str("name", in.Name, false, 0, 128, patName)
	dest := validateDestination(&v, in.DestinationConfiguration, true)
	v.tags("tags", in.Tags)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.authorize(c, h.anyARN(chat.KindLoggingConfiguration)); err != nil {
		return nil, err
	}
	now := chat.Now()
	lc := &chat.LoggingConfiguration{
		ID:          chat.NewID(),
		Name:        deref(in.Name),
		CreateTime:  now,
		UpdateTime:  now,
		Destination: dest,
		State:       chat.StateCreating,
		Tags:        nonNilTags(in.Tags),
	}
	if err := h.store.CreateLoggingConfiguration(c.ctx, lc, h.cfg.MaxLoggingConfigurations); err != nil {
		return nil, err
	}
	h.loggingConfigurationChanged(lc.ID)
	lc, err := h.settle(c, lc.ID, dest, chat.StateCreateFailed)
	if err != nil {
		return nil, err
	}
	h.log.InfoContext(c.ctx, "logging configuration created", "loggingConfigurationId", lc.ID, "state", lc.State)
	return h.loggingConfigurationJSON(lc), nil
}

func (h *Handler) loggingConfigurationIDFromInput(c *call) (string, error) {
	var in roomIdentifierInput
	if err := decodeBody(c.body, &in); err != nil {
		return "", err
	}
	var v validator
	id, missing := h.identifier(&v, "identifier", in.Identifier, chat.KindLoggingConfiguration, true)
	if err := v.err(); err != nil {
		return "", err
	}
	if err := h.authorize(c, h.arn(chat.KindLoggingConfiguration, id)); err != nil {
		return "", err
	}
	return id, missing
}

func (h *Handler) getLoggingConfiguration(c *call) (any, error) {
	id, err := h.loggingConfigurationIDFromInput(c)
	if err != nil {
		return nil, err
	}
	lc, err := h.store.GetLoggingConfiguration(c.ctx, id)
	if err != nil {
		return nil, err
	}
	return h.loggingConfigurationJSON(lc), nil
}

// deleteLoggingConfiguration refuses (ConflictException) while rooms still
// reference the configuration, so no room silently stops logging; detach it
// with UpdateRoom first (README, "Compatibility notes").
func (h *Handler) deleteLoggingConfiguration(c *call) (any, error) {
	id, err := h.loggingConfigurationIDFromInput(c)
	if err != nil {
		return nil, err
	}
	if err := h.store.DeleteLoggingConfiguration(c.ctx, id); err != nil {
		return nil, err
	}
	h.loggingConfigurationChanged(id)
	h.log.InfoContext(c.ctx, "logging configuration deleted", "loggingConfigurationId", id)
	return nil, nil
}

type updateLoggingConfigurationInput struct {
	Identifier               *string           `json:"identifier"`
	Name                     *string           `json:"name"`
	DestinationConfiguration *destinationInput `json:"destinationConfiguration"`
}

func (h *Handler) updateLoggingConfiguration(c *call) (any, error) {
	var in updateLoggingConfigurationInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	id, missing := h.identifier(&v, "identifier", in.Identifier, chat.KindLoggingConfiguration, true)
	v.str("name", in.Name, false, 0, 128, patName)
	dest := validateDestination(&v, in.DestinationConfiguration, false)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.authorize(c, h.arn(chat.KindLoggingConfiguration, id)); err != nil {
		return nil, err
	}
	if missing != nil {
		return nil, missing
	}
	lc, err := h.store.UpdateLoggingConfiguration(c.ctx, id, func(lc *chat.LoggingConfiguration) error {
		if isTransitional(lc.State) {
			return chat.Conflict(id, "logging configuration is "+lc.State+"; retry when it has settled")
		}
		if in.Name != nil {
			lc.Name = *in.Name
		}
		if in.DestinationConfiguration != nil {
			lc.Destination = dest
			lc.State = chat.StateUpdating
		}
		lc.UpdateTime = chat.Now()
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.loggingConfigurationChanged(id)
	if lc.State == chat.StateUpdating {
		if lc, err = h.settle(c, id, dest, chat.StateUpdateFailed); err != nil {
			return nil, err
		}
	}
	return h.loggingConfigurationJSON(lc), nil
}

// probeTimeout bounds the destination check of Create/UpdateLoggingConfiguration.
const probeTimeout = 5 * time.Second

// settle finishes a CREATING or UPDATING configuration: it probes the
// destination and stores ACTIVE, or failed (CREATE_FAILED/UPDATE_FAILED) with
// the reason logged. The transitional state is stored first so that a Get
// while the probe runs tells the truth. A failed configuration records nothing
// until an UpdateLoggingConfiguration succeeds.
//
// Every write of a configuration is followed by loggingConfigurationChanged,
// this one included: rooms that referenced the configuration while it was
// CREATING or UPDATING (and chat logging cached it so) must see it ACTIVE.
func (h *Handler) settle(c *call, id string, dest chat.Destination, failed string) (*chat.LoggingConfiguration, error) {
	state := chat.StateActive
	if h.probe != nil {
		ctx, cancel := context.WithTimeout(c.ctx, probeTimeout)
		err := h.probe.Probe(ctx, dest)
		cancel()
		if err != nil {
			state = failed
			h.log.WarnContext(c.ctx, "logging destination check failed", "loggingConfigurationId", id, "state", failed, "reason", err)
		}
	}
	// The outcome is stored even if the client went away meanwhile.
	lc, err := h.store.UpdateLoggingConfiguration(context.WithoutCancel(c.ctx), id, func(lc *chat.LoggingConfiguration) error {
		lc.State = state
		return nil
	})
	// Even after an error: whether the write happened is unknown.
	h.loggingConfigurationChanged(id)
	h.announceLoggingConfiguration(context.WithoutCancel(c.ctx), id)
	return lc, err
}

// announceLoggingConfiguration tells the other nodes that configuration id
// settled, so those with connections in a room that references it stop
// using what they cached: each such room is announced as updated (as
// UpdateRoom does), which is what makes a node re-read the room's routing
// and its configurations (chatlog.Pipeline.RoomChanged). Nodes without
// connections in the room are not subscribed to it; they notice within
// chat logging's route TTL. Only settled states are announced: while a
// configuration is UPDATING a node keeps its last ACTIVE destination
// anyway, and deleting one that a room references is refused.
//
// A failure is logged (and a broker failure counted by messaging) but does
// not fail the call: the configuration is stored, and the TTL bounds how
// long a node misses it. Announcing stops at the first broker failure, so
// the call stays short while the broker is down.
func (h *Handler) announceLoggingConfiguration(ctx context.Context, id string) {
	const pageSize = 100
	var after *chat.Cursor
	for {
		rooms, err := h.store.ListRooms(ctx, store.RoomFilter{LoggingConfigurationID: id}, store.Page{After: after, Limit: pageSize})
		if err != nil {
			h.log.WarnContext(ctx, "logging configuration change not announced to other nodes; they apply it within the route TTL",
				"loggingConfigurationId", id, "err", err)
			return
		}
		for _, r := range rooms {
			if err := h.msg.RoomUpdated(ctx, r); err != nil {
				// The broker is failing (each attempt retries for seconds):
				// the remaining rooms are left to the TTL too, so that the
				// call stays short.
				h.log.WarnContext(ctx, "logging configuration change not announced to other nodes; they apply it within the route TTL",
					"loggingConfigurationId", id, "roomId", r.ID, "err", err)
				return
			}
		}
		if len(rooms) < pageSize {
			return
		}
		last := rooms[len(rooms)-1]
		after = &chat.Cursor{UpdateTime: last.UpdateTime, ID: last.ID}
	}
}

func isTransitional(state string) bool {
	return state == chat.StateCreating || state == chat.StateUpdating || state == chat.StateDeleting
}

type listLoggingConfigurationsInput struct {
	NextToken  *string `json:"nextToken"`
	MaxResults *int    `json:"maxResults"`
}

type listLoggingConfigurationsOutput struct {
	LoggingConfigurations []loggingConfigurationJSON `json:"loggingConfigurations"`
	NextToken             string                     `json:"nextToken,omitempty"`
}

func (h *Handler) listLoggingConfigurations(c *call) (any, error) {
	var in listLoggingConfigurationsInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	v.str("nextToken", in.NextToken, false, 0, 1024, nil)
	v.intRange("maxResults", in.MaxResults, 1, 50)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.authorize(c, h.anyARN(chat.KindLoggingConfiguration)); err != nil {
		return nil, err
	}
	after, err := h.decodePageToken(chat.KindLoggingConfiguration, deref(in.NextToken))
	if err != nil {
		return nil, err
	}
	limit := derefOr(in.MaxResults, 50)
	lcs, err := h.store.ListLoggingConfigurations(c.ctx, store.Page{After: after, Limit: limit + 1})
	if err != nil {
		return nil, err
	}
	out := listLoggingConfigurationsOutput{LoggingConfigurations: make([]loggingConfigurationJSON, 0, min(len(lcs), limit))}
	if len(lcs) > limit {
		last := lcs[limit-1]
		out.NextToken = h.encodePageToken(chat.KindLoggingConfiguration, chat.Cursor{UpdateTime: last.UpdateTime, ID: last.ID})
		lcs = lcs[:limit]
	}
	for _, lc := range lcs {
		out.LoggingConfigurations = append(out.LoggingConfigurations, h.loggingConfigurationJSON(lc))
	}
	return out, nil
}
