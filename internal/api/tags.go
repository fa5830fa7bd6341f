package api

import "github.com/ivschatd/ivschatd/internal/chat"

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
	return struct{}{}, nil
}
