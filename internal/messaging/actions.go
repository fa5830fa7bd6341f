package messaging

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/review"
)

// Field limits of moderation requests, the same as their control-plane
// counterparts (DeleteMessage reason 1–256, userId up to 128).
const (
	maxReasonLength = 256
	maxIDLength     = 128
)

func newID() string { return chat.NewID() }

// handleRequest answers one client request. Order (spec §3.1): decode (400)
// → per-connection rate (429) → capability (403) → validation (400/413) →
// room or moderation rate (429) → broadcast.
func (c *conn) handleRequest(payload []byte, now time.Time) {
	req, rerr := decodeClientFrame(payload)
	// Counted as requests made, whatever becomes of them (IVS
	// MessagingRequests and Requests by Action).
	c.g.stats.countRequest(actionOfRequest(req.Action))
	// Malformed frames count too: the limit protects the server, whatever
	// the frames contain.
	if !c.reqRate.Allow(now, c.g.opts.RequestRatePerSecond) {
		c.sendError(req.RequestID, "", codeTooManyRequests,
			fmt.Sprintf("Too many requests: at most %d per second per connection", c.g.opts.RequestRatePerSecond))
		return
	}
	if rerr != nil {
		c.sendError(req.RequestID, "", rerr.code, rerr.msg)
		return
	}
	switch req.Action {
	case actionSendMessage:
		c.sendMessage(&req, now)
	case actionDeleteMessage:
		c.deleteMessage(&req, now)
	case actionDisconnectUser:
		c.disconnectUser(&req, now)
	}
}

func (c *conn) forbidden(req *clientRequest, capability string) {
	c.sendError(req.RequestID, "", codeForbidden,
		"Forbidden: the chat token does not grant the "+capability+" capability")
}

func (c *conn) sendMessage(req *clientRequest, now time.Time) {
	if c.caps&capSendMessage == 0 {
		c.forbidden(req, chat.CapabilitySendMessage)
		return
	}
	if req.Content == nil {
		c.sendError(req.RequestID, "", codeBadRequest, "Content is required")
		return
	}
	// "Must be shorter than" in the docs; a length equal to the maximum is
	// accepted (spec §3.1, boundary uncertain). 400 rather than 413 follows
	// the published error sample for over-long content.
	cfg := c.room.config()
	maxLen := cfg.maxLen
	if n := utf8.RuneCountInString(*req.Content); n > maxLen {
		c.sendError(req.RequestID, "", codeBadRequest,
			fmt.Sprintf("Content must be at most %d characters, got %d", maxLen, n))
		return
	}
	if n := chat.AttributesBytes(req.Attributes); n > c.g.opts.MaxAttributesBytes {
		c.sendError(req.RequestID, "", codePayloadTooLarge,
			fmt.Sprintf("Attributes must be at most %d bytes (keys and values together), got %d", c.g.opts.MaxAttributesBytes, n))
		return
	}
	if !c.room.allowMessage(now, cfg.maxRate) {
		c.sendError(req.RequestID, "", codeTooManyRequests,
			fmt.Sprintf("Too many messages: the room allows %d per second", cfg.maxRate))
		return
	}
	// The Id is assigned before delivery so that a failure can name it
	// (ERROR Id = the failed operation's ID, spec §4.4) and the review
	// handler sees the Id the message will have.
	id := newID()
	content, attrs := *req.Content, req.Attributes
	if h := cfg.handler; h != nil && c.g.opts.Reviewer != nil {
		res := c.review(*h, req, id, maxLen)
		if !res.Allow {
			c.sendError(req.RequestID, id, codeNotAcceptable, "Message rejected by the room's message review handler")
			return
		}
		content, attrs = res.Content, res.Attributes
	}
	frame := encodeMessage(id, req.RequestID, sortedAttrs(attrs), content, now, c.sender)
	c.publish(req, id, frame, refuseUnrecorded)
}

// review asks the room's handler about a message (spec §7). It runs on the
// connection's reader goroutine and blocks it for up to the review timeout:
// the connection's next request is not read until this one is decided and
// published, which keeps each sender's messages in order without a queue,
// while other connections (and rooms) have their own readers and are
// reviewed concurrently. A client sending faster than its handler answers is
// slowed down by TCP flow control, and the per-connection request rate still
// applies.
func (c *conn) review(h chat.MessageReviewHandler, req *clientRequest, id string, maxLen int) review.Result {
	return c.g.opts.Reviewer.Review(c.g.ctx, h, review.Request{
		Content:          *req.Content,
		MessageID:        id,
		RoomARN:          c.room.arn,
		Attributes:       req.Attributes,
		Sender:           review.Sender{UserID: c.userID, Attributes: c.attrs, IP: c.ip},
		MaxContentLength: maxLen,
	})
}

func (c *conn) deleteMessage(req *clientRequest, now time.Time) {
	if !c.moderationAllowed(req, now, capDeleteMessage, chat.CapabilityDeleteMessage, "Id", req.ID) {
		return
	}
	id := newID()
	frame := encodeEvent(id, req.RequestID, eventDeleteMessage, deleteMessageAttrs(req.ID, req.Reason), now)
	c.publish(req, id, frame, deliverUnrecorded)
}

func (c *conn) disconnectUser(req *clientRequest, now time.Time) {
	if !c.moderationAllowed(req, now, capDisconnectUser, chat.CapabilityDisconnectUser, "UserId", req.UserID) {
		return
	}
	if c.closing.Load() {
		return // see publish
	}
	if err := c.g.disconnectUser(c.g.ctx, c.room.id, req.RequestID, req.UserID, req.Reason); err != nil {
		c.g.log.Error("messaging: disconnect user failed", "room", c.room.id, "err", err)
		c.sendError(req.RequestID, "", codeInternal, "Internal error: the request could not be delivered")
	}
}

// publish broadcasts a frame to the room through the broker; the sender
// receives it too, which is how the JS SDK learns that the request succeeded.
//
// A request is dropped when the server decided to close the connection
// after the reader picked it up (a review can take Options' review timeout,
// during which the user may be disconnected): what a disconnected user sent
// must not appear after the aws:DISCONNECT_USER that removed them.
func (c *conn) publish(req *clientRequest, id string, frame []byte, policy unrecordedPolicy) {
	if c.closing.Load() {
		return
	}
	if err := c.g.publishIn(c.g.ctx, c.room, c.room.id, frame, policy); err != nil {
		if errors.Is(err, errNotRecorded) {
			// Counted and logged (rate limited) by publishFrame.
			c.sendError(req.RequestID, id, codeInternal, "Internal error: the room's chat log could not record the request, so it was not delivered")
			return
		}
		c.g.log.Error("messaging: publish failed", "room", c.room.id, "err", err)
		c.sendError(req.RequestID, id, codeInternal, "Internal error: the request could not be delivered")
	}
}

// moderationAllowed runs the checks DELETE_MESSAGE and DISCONNECT_USER share —
// capability (403), the target field and the reason (400), the gateway-wide
// moderation rate (429) — and answers the client itself when one fails.
func (c *conn) moderationAllowed(req *clientRequest, now time.Time, need capSet, capability, field, value string) bool {
	if c.caps&need == 0 {
		c.forbidden(req, capability)
		return false
	}
	if msg := checkField(field, value, maxIDLength); msg != "" {
		c.sendError(req.RequestID, "", codeBadRequest, msg)
		return false
	}
	if n := utf8.RuneCountInString(req.Reason); n > maxReasonLength {
		c.sendError(req.RequestID, "", codeBadRequest, fmt.Sprintf("Reason must be at most %d characters, got %d", maxReasonLength, n))
		return false
	}
	if !c.g.allowModeration(now) {
		c.sendError(req.RequestID, "", codeTooManyRequests,
			fmt.Sprintf("Too many moderation requests: at most %d per second", c.g.opts.ModerationRatePerSecond))
		return false
	}
	return true
}

func checkField(name, v string, maxLen int) string {
	switch {
	case v == "":
		return name + " is required"
	case len(v) > maxLen:
		return fmt.Sprintf("%s must be at most %d characters", name, maxLen)
	}
	return ""
}
