package api

import (
	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/store"
)

type reviewHandlerInput struct {
	URI            *string `json:"uri"`
	FallbackResult *string `json:"fallbackResult"`
}

// validateReviewHandler checks a MessageReviewHandler input and returns the
// handler to store: nil when the URI is empty (an empty URI removes the
// handler, as UpdateRoom documents).
func (h *Handler) validateReviewHandler(v *validator, in *reviewHandlerInput) *chat.MessageReviewHandler {
	if in == nil {
		return nil
	}
	before := len(v.fields)
	v.str("messageReviewHandler.uri", in.URI, false, 0, 170, patLambdaARNOrURL)
	// A URI the reviewer would refuse on every message is refused now, while
	// the caller can still fix it, rather than silently applying the
	// fallback to every message of the room.
	if len(v.fields) == before && in.URI != nil && *in.URI != "" && h.cfg.CheckReviewURI != nil {
		if err := h.cfg.CheckReviewURI(*in.URI); err != nil {
			v.add("messageReviewHandler.uri", "%v", err)
		}
	}
	fallback := chat.FallbackAllow
	if in.FallbackResult != nil {
		fallback = *in.FallbackResult
		v.enum("messageReviewHandler.fallbackResult", fallback, chat.FallbackAllow, chat.FallbackDeny)
	}
	if in.URI == nil || *in.URI == "" {
		return nil
	}
	return &chat.MessageReviewHandler{URI: *in.URI, FallbackResult: fallback}
}

// loggingConfigurationIDs validates a LoggingConfigurationIdentifierList.
func (h *Handler) loggingConfigurationIDs(v *validator, in []string) ([]string, error) {
	if len(in) > chat.MaxLoggingConfigurationsPerRoom {
		v.add("loggingConfigurationIdentifiers", "must have at most %d items", chat.MaxLoggingConfigurationsPerRoom)
		return nil, nil
	}
	ids := make([]string, 0, len(in))
	var missing error
	seen := map[string]bool{}
	for i := range in {
		id, nf := h.identifier(v, "loggingConfigurationIdentifiers["+itoa(i)+"]", &in[i], chat.KindLoggingConfiguration, true)
		if nf != nil && missing == nil {
			missing = nf
		}
		// Naming one configuration twice attaches it once.
		if id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, missing
}

type createRoomInput struct {
	Name                            *string             `json:"name"`
	MaximumMessageRatePerSecond     *int                `json:"maximumMessageRatePerSecond"`
	MaximumMessageLength            *int                `json:"maximumMessageLength"`
	MessageReviewHandler            *reviewHandlerInput `json:"messageReviewHandler"`
	Tags                            map[string]string   `json:"tags"`
	LoggingConfigurationIdentifiers []string            `json:"loggingConfigurationIdentifiers"`
}

func (h *Handler) createRoom(c *call) (any, error) {
	var in createRoomInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	v.str("name", in.Name, false, 0, 128, patName)
	v.intRange("maximumMessageRatePerSecond", in.MaximumMessageRatePerSecond, 1, 100)
	v.intRange("maximumMessageLength", in.MaximumMessageLength, 1, 500)
	handler := h.validateReviewHandler(&v, in.MessageReviewHandler)
	v.tags("tags", in.Tags)
	v.extensionTags("tags", in.Tags)
	lcIDs, missing := h.loggingConfigurationIDs(&v, in.LoggingConfigurationIdentifiers)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.authorize(c, h.anyARN(chat.KindRoom)); err != nil {
		return nil, err
	}
	if missing != nil {
		return nil, missing
	}
	now := chat.Now()
	room := &chat.Room{
		ID:                          chat.NewID(),
		Name:                        deref(in.Name),
		CreateTime:                  now,
		UpdateTime:                  now,
		MaximumMessageRatePerSecond: derefOr(in.MaximumMessageRatePerSecond, chat.DefaultMaximumMessageRatePerSecond),
		MaximumMessageLength:        derefOr(in.MaximumMessageLength, chat.DefaultMaximumMessageLength),
		MessageReviewHandler:        handler,
		Tags:                        nonNilTags(in.Tags),
		LoggingConfigurationIDs:     lcIDs,
	}
	if err := h.store.CreateRoom(c.ctx, room, h.cfg.MaxRooms); err != nil {
		return nil, err
	}
	h.roomChanged(room.ID)
	h.log.InfoContext(c.ctx, "room created", "roomId", room.ID)
	return h.roomJSON(room, false), nil
}

type roomIdentifierInput struct {
	Identifier *string `json:"identifier"`
}

// roomFromIdentifier decodes {"identifier"}, validates it and authorizes the call on it.
func (h *Handler) roomIDFromInput(c *call) (string, error) {
	var in roomIdentifierInput
	if err := decodeBody(c.body, &in); err != nil {
		return "", err
	}
	var v validator
	id, missing := h.identifier(&v, "identifier", in.Identifier, chat.KindRoom, true)
	if err := v.err(); err != nil {
		return "", err
	}
	if err := h.authorize(c, h.arn(chat.KindRoom, id)); err != nil {
		return "", err
	}
	return id, missing
}

func (h *Handler) getRoom(c *call) (any, error) {
	id, err := h.roomIDFromInput(c)
	if err != nil {
		return nil, err
	}
	room, err := h.store.GetRoom(c.ctx, id)
	if err != nil {
		return nil, err
	}
	return h.roomJSON(room, false), nil
}

func (h *Handler) deleteRoom(c *call) (any, error) {
	id, err := h.roomIDFromInput(c)
	if err != nil {
		return nil, err
	}
	if err := h.store.DeleteRoom(c.ctx, id); err != nil {
		return nil, err
	}
	h.rooms.forget(id)
	h.roomChanged(id)
	h.log.InfoContext(c.ctx, "room deleted", "roomId", id)
	// After the store: a handshake racing the deletion re-checks the store
	// once subscribed (messaging.Gateway.RoomDeleted). A failure to tell the
	// other nodes fails the call (500, which SDKs retry; the retry finds the
	// room gone) rather than answering 204 while connections chat on.
	if err := h.msg.RoomDeleted(c.ctx, id); err != nil {
		return nil, err
	}
	return nil, nil
}

type updateRoomInput struct {
	Identifier                      *string             `json:"identifier"`
	Name                            *string             `json:"name"`
	MaximumMessageRatePerSecond     *int                `json:"maximumMessageRatePerSecond"`
	MaximumMessageLength            *int                `json:"maximumMessageLength"`
	MessageReviewHandler            *reviewHandlerInput `json:"messageReviewHandler"`
	LoggingConfigurationIdentifiers *[]string           `json:"loggingConfigurationIdentifiers"`
}

func (h *Handler) updateRoom(c *call) (any, error) {
	var in updateRoomInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	id, missing := h.identifier(&v, "identifier", in.Identifier, chat.KindRoom, true)
	v.str("name", in.Name, false, 0, 128, patName)
	v.intRange("maximumMessageRatePerSecond", in.MaximumMessageRatePerSecond, 1, 100)
	v.intRange("maximumMessageLength", in.MaximumMessageLength, 1, 500)
	handler := h.validateReviewHandler(&v, in.MessageReviewHandler)
	var lcIDs []string
	var lcMissing error
	if in.LoggingConfigurationIdentifiers != nil {
		lcIDs, lcMissing = h.loggingConfigurationIDs(&v, *in.LoggingConfigurationIdentifiers)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.authorize(c, h.arn(chat.KindRoom, id)); err != nil {
		return nil, err
	}
	if missing != nil {
		return nil, missing
	}
	if lcMissing != nil {
		return nil, lcMissing
	}
	room, err := h.store.UpdateRoom(c.ctx, id, func(r *chat.Room) error {
		if in.Name != nil {
			r.Name = *in.Name
		}
		if in.MaximumMessageRatePerSecond != nil {
			r.MaximumMessageRatePerSecond = *in.MaximumMessageRatePerSecond
		}
		if in.MaximumMessageLength != nil {
			r.MaximumMessageLength = *in.MaximumMessageLength
		}
		if in.MessageReviewHandler != nil {
			r.MessageReviewHandler = handler
		}
		if in.LoggingConfigurationIdentifiers != nil {
			r.LoggingConfigurationIDs = lcIDs
		}
		r.UpdateTime = chat.Now()
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.roomChanged(id)
	if err := h.msg.RoomUpdated(c.ctx, room); err != nil {
		return nil, err
	}
	return h.roomJSON(room, false), nil
}

type listRoomsInput struct {
	Name                           *string `json:"name"`
	NextToken                      *string `json:"nextToken"`
	MaxResults                     *int    `json:"maxResults"`
	MessageReviewHandlerURI        *string `json:"messageReviewHandlerUri"`
	LoggingConfigurationIdentifier *string `json:"loggingConfigurationIdentifier"`
}

type listRoomsOutput struct {
	Rooms     []roomJSON `json:"rooms"`
	NextToken string     `json:"nextToken,omitempty"`
}

func (h *Handler) listRooms(c *call) (any, error) {
	var in listRoomsInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	v.str("name", in.Name, false, 0, 128, patName)
	v.str("nextToken", in.NextToken, false, 0, 1024, nil)
	v.intRange("maxResults", in.MaxResults, 1, 50)
	v.str("messageReviewHandlerUri", in.MessageReviewHandlerURI, false, 0, 170, patLambdaARNOrURL)
	lcID, missing := h.identifier(&v, "loggingConfigurationIdentifier", in.LoggingConfigurationIdentifier, chat.KindLoggingConfiguration, false)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := h.authorize(c, h.anyARN(chat.KindRoom)); err != nil {
		return nil, err
	}
	after, err := h.decodePageToken(chat.KindRoom, deref(in.NextToken))
	if err != nil {
		return nil, err
	}
	if missing != nil {
		return nil, missing
	}
	if lcID != "" {
		// A filter naming a configuration that does not exist is the modeled
		// ResourceNotFoundException rather than an empty list.
		if _, err := h.store.GetLoggingConfiguration(c.ctx, lcID); err != nil {
			return nil, err
		}
	}
	limit := derefOr(in.MaxResults, 50)
	rooms, err := h.store.ListRooms(c.ctx, store.RoomFilter{
		Name:                    deref(in.Name),
		MessageReviewHandlerURI: deref(in.MessageReviewHandlerURI),
		LoggingConfigurationID:  lcID,
	}, store.Page{After: after, Limit: limit + 1})
	if err != nil {
		return nil, err
	}
	out := listRoomsOutput{Rooms: make([]roomJSON, 0, min(len(rooms), limit))}
	if len(rooms) > limit {
		last := rooms[limit-1]
		out.NextToken = h.encodePageToken(chat.KindRoom, chat.Cursor{UpdateTime: last.UpdateTime, ID: last.ID})
		rooms = rooms[:limit]
	}
	for _, r := range rooms {
		out.Rooms = append(out.Rooms, h.roomJSON(r, true))
	}
	return out, nil
}
