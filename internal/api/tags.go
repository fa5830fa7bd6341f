package api

import (
	"strings"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// tagTarget validates the {resourceArn} label, authorizes the call on it and
// checks that the resource exists.
func (h *Handler) tagTarget(c *call, v *validator) (chat.Kind, string, error) {
	kind, id, missing := h.resourceARN(v, c.label)
	if err := v.err(); err != nil {
		return "", "", err
	}
	if err := h.authorize(c, c.label); err != nil {
		return "", "", err
	}
	if missing != nil {
		return "", "", missing
	}
	return kind, id, nil
}

type tagsOutput struct {
	Tags map[string]string `json:"tags"`
}

func (h *Handler) listTagsForResource(c *call) (any, error) {
	var v validator
	kind, id, err := h.tagTarget(c, &v)
	if err != nil {
		return nil, err
	}
	tags, err := h.store.Tags(c.ctx, kind, id)
	if err != nil {
		return nil, err
	}
	return tagsOutput{Tags: nonNilTags(tags)}, nil
}

type tagResourceInput struct {
	Tags map[string]string `json:"tags"`
}

func (h *Handler) tagResource(c *call) (any, error) {
	var in tagResourceInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	v.required("tags", in.Tags != nil)
	v.tags("tags", in.Tags)
	if tagsLabelIsRoom(c.label) {
		v.extensionTags("tags", in.Tags)
	}
	kind, id, err := h.tagTarget(c, &v)
	if err != nil {
		return nil, err
	}
	if err := h.store.TagResource(c.ctx, kind, id, in.Tags); err != nil {
		return nil, err
	}
	if err := h.extensionTagsChanged(c, kind, id, keysOf(in.Tags)); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (h *Handler) untagResource(c *call) (any, error) {
	// tagKeys is a required repeated query parameter, but an empty list has no
	// wire form, so its absence is the empty list (a no-op).
	keys := c.query["tagKeys"]
	var v validator
	if len(keys) > 50 {
		v.add("tagKeys", "must have at most 50 items")
	}
	for i, k := range keys {
		v.length("tagKeys["+itoa(i)+"]", k, 1, 128)
	}
	kind, id, err := h.tagTarget(c, &v)
	if err != nil {
		return nil, err
	}
	if err := h.store.UntagResource(c.ctx, kind, id, keys); err != nil {
		return nil, err
	}
	if err := h.extensionTagsChanged(c, kind, id, keys); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// extensionTagPrefix starts the tag keys that set ivschatd's extensions of a
// room (ivschatd:history, …).
const extensionTagPrefix = "ivschatd:"

// extensionTagsChanged tells every node's gateway that a room's extension
// tags changed, as UpdateRoom does for its limits: a room's recent-messages
// setting decides what the nodes with connections in it record. A tag call
// on other keys, or on another kind of resource, tells nobody. Like
// UpdateRoom, a change the broker did not take answers 500 (the tags are
// stored; a retry announces them).
func (h *Handler) extensionTagsChanged(c *call, kind chat.Kind, id string, keys []string) error {
	if kind != chat.KindRoom || !slicesContainPrefix(keys, extensionTagPrefix) {
		return nil
	}
	room, err := h.store.GetRoom(c.ctx, id)
	if err != nil {
		if chat.ErrorCode(err) == chat.CodeResourceNotFound {
			return nil // deleted meanwhile: nothing to tell
		}
		return err
	}
	return h.msg.RoomUpdated(c.ctx, room)
}

func keysOf(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func slicesContainPrefix(keys []string, prefix string) bool {
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
