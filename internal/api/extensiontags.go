package api

import "github.com/ivschatd/ivschatd/internal/chat"

// extensionTags validates the values of ivschat's extension tags (see
// chat.ExtensionTags) in a room's tags: CreateRoom, and TagResource on a
// room. A bad value is a field error named after the tag
// ("tags.ivschatd:history"), so the ValidationException says which tag and
// why. Only the known keys are checked, with their exact spelling: other
// keys under ivschatd: are ordinary tags, and on logging configurations the
// extension keys mean nothing and are not checked.
func (v *validator) extensionTags(name string, tags map[string]string) {
	for _, et := range chat.ExtensionTags {
		value, present := tags[et.Key]
		if !present {
			continue
		}
		if _, ok := chat.ExtensionTagInt(value, et.Min, et.Max); !ok {
			v.add(name+"."+et.Key, "%s must be a whole number of %s from %d to %d, got %q", et.Key, et.Unit, et.Min, et.Max, value)
		}
	}
}

// tagsLabelIsRoom says whether the {resourceArn} label of a tagging operation
// names a room, so its extension tags are validated with the other fields,
// before authorization (resourceARN reports a malformed label).
func tagsLabelIsRoom(label string) bool {
	arn, ok := chat.ParseARN(label)
	return ok && arn.Kind == chat.KindRoom
}
