package api

import (
	"context"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/token"
)

type createChatTokenInput struct {
	RoomIdentifier           *string           `json:"roomIdentifier"`
	UserID                   *string           `json:"userId"`
	Capabilities             []string          `json:"capabilities"`
	SessionDurationInMinutes *int              `json:"sessionDurationInMinutes"`
	Attributes               map[string]string `json:"attributes"`
}

type createChatTokenOutput struct {
	Token                 string `json:"token"`
	TokenExpirationTime   string `json:"tokenExpirationTime"`
	SessionExpirationTime string `json:"sessionExpirationTime"`
}

func (h *Handler) createChatToken(c *call) (any, error) {
	var in createChatTokenInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	roomID, missing := h.identifier(&v, "roomIdentifier", in.RoomIdentifier, chat.KindRoom, true)
	v.str("userId", in.UserID, true, 1, 128, nil)
	var caps []string
	for i, capability := range in.Capabilities {
		if v.enum("capabilities["+itoa(i)+"]", capability, chat.CapabilitySendMessage, chat.CapabilityDisconnectUser, chat.CapabilityDeleteMessage) && !contains(caps, capability) {
			caps = append(caps, capability)
		}
	}
	v.intRange("sessionDurationInMinutes", in.SessionDurationInMinutes, chat.MinSessionDurationMinutes, chat.MaxSessionDurationMinutes)
	v.attributes("attributes", in.Attributes)
	if err := v.err(); err != nil {
		return nil, err
	}
	roomARN := h.arn(chat.KindRoom, roomID)
	if err := h.authorize(c, roomARN); err != nil {
		return nil, err
	}
	if missing != nil {
		return nil, missing
	}
	now := h.now().UTC()
	if err := h.rooms.check(c.ctx, roomID, now, h.roomExists); err != nil {
		return nil, err
	}
	duration := derefOr(in.SessionDurationInMinutes, chat.DefaultSessionDurationMinutes)
	claims := token.Claims{
		ID:                     chat.NewID() + chat.NewID(),
		RoomARN:                roomARN,
		UserID:                 *in.UserID,
		Capabilities:           caps,
		Attributes:             in.Attributes,
		SessionDurationMinutes: duration,
		IssuedAt:               now,
		SessionExpiresAt:       now.Add(time.Duration(duration) * time.Minute),
	}
	// A token is usable until the TTL passes, but never after its session
	// would already be over.
	claims.TokenExpiresAt = now.Add(h.cfg.TokenTTL)
	if claims.TokenExpiresAt.After(claims.SessionExpiresAt) {
		claims.TokenExpiresAt = claims.SessionExpiresAt
	}
	sealed, err := h.tokens.Seal(claims)
	if err != nil {
		return nil, err
	}
	return createChatTokenOutput{
		Token:                 sealed,
		TokenExpirationTime:   formatTime(claims.TokenExpiresAt),
		SessionExpirationTime: formatTime(claims.SessionExpiresAt),
	}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (h *Handler) roomExists(ctx context.Context, id string) error {
	_, err := h.store.GetRoom(ctx, id)
	return err
}
