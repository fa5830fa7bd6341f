package api

import "github.com/ivschatd/ivschatd/internal/chat"

// The three operations that reach connected clients. Each validates and
// authorizes, then hands the work to the messaging gateway, which checks that
// the room exists (ResourceNotFoundException otherwise) and broadcasts exactly
// what its WebSocket counterpart would.

type sendEventInput struct {
	RoomIdentifier *string           `json:"roomIdentifier"`
	EventName      *string           `json:"eventName"`
	Attributes     map[string]string `json:"attributes"`
}

type idOutput struct {
	ID string `json:"id"`
}

func (h *Handler) sendEvent(c *call) (any, error) {
	var in sendEventInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	roomID, missing := h.identifier(&v, "roomIdentifier", in.RoomIdentifier, chat.KindRoom, true)
	v.str("eventName", in.EventName, true, 1, 100, nil)
	v.attributes("attributes", in.Attributes)
	if err := h.liveRoom(c, &v, roomID, missing); err != nil {
		return nil, err
	}
	id, err := h.msg.SendEvent(c.ctx, roomID, *in.EventName, in.Attributes)
	if err != nil {
		return nil, err
	}
	return idOutput{ID: id}, nil
}

type deleteMessageInput struct {
	RoomIdentifier *string `json:"roomIdentifier"`
	ID             *string `json:"id"`
	Reason         *string `json:"reason"`
}

func (h *Handler) deleteMessage(c *call) (any, error) {
	var in deleteMessageInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	roomID, missing := h.identifier(&v, "roomIdentifier", in.RoomIdentifier, chat.KindRoom, true)
	v.str("id", in.ID, true, 12, 12, patAlnum)
	v.str("reason", in.Reason, false, 1, 256, nil)
	if err := h.liveRoom(c, &v, roomID, missing); err != nil {
		return nil, err
	}
	id, err := h.msg.DeleteMessage(c.ctx, roomID, *in.ID, deref(in.Reason))
	if err != nil {
		return nil, err
	}
	return idOutput{ID: id}, nil
}

type disconnectUserInput struct {
	RoomIdentifier *string `json:"roomIdentifier"`
	UserID         *string `json:"userId"`
	Reason         *string `json:"reason"`
}

func (h *Handler) disconnectUser(c *call) (any, error) {
	var in disconnectUserInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	roomID, missing := h.identifier(&v, "roomIdentifier", in.RoomIdentifier, chat.KindRoom, true)
	v.str("userId", in.UserID, true, 1, 128, nil)
	v.str("reason", in.Reason, false, 1, 256, nil)
	if err := h.liveRoom(c, &v, roomID, missing); err != nil {
		return nil, err
	}
	if err := h.msg.DisconnectUser(c.ctx, roomID, *in.UserID, deref(in.Reason)); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// liveRoom finishes validation and authorizes the call on the room. Whether
// the room exists is checked by the messaging gateway, which answers
// ResourceNotFoundException itself.
func (h *Handler) liveRoom(c *call, v *validator, roomID string, missing error) error {
	if err := v.err(); err != nil {
		return err
	}
	if err := h.authorize(c, h.arn(chat.KindRoom, roomID)); err != nil {
		return err
	}
	return missing
}
