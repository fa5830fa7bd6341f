package api

import (
	"regexp"

	"github.com/ivschatd/ivschatd/internal/chat"
)

var identifierPattern = map[chat.Kind]*regexp.Regexp{
	chat.KindRoom:                 regexp.MustCompile(`^arn:aws:ivschat:[a-z0-9-]+:[0-9]+:room/[a-zA-Z0-9-]+$`),
	chat.KindLoggingConfiguration: regexp.MustCompile(`^arn:aws:ivschat:[a-z0-9-]+:[0-9]+:logging-configuration/[a-zA-Z0-9-]+$`),
}

// identifier validates a RoomIdentifier or LoggingConfigurationIdentifier
// member and returns the resource ID it names. The model requires an ARN; a
// bare 12-character ID is accepted as a documented extension.
//
// An ARN of another region or account is valid input that names nothing here:
// missing is then the ResourceNotFoundException to answer once validation
// has passed.
func (h *Handler) identifier(v *validator, name string, s *string, kind chat.Kind, required bool) (id string, missing error) {
	if s == nil {
		if required {
			v.add(name, "is required")
		}
		return "", nil
	}
	if !v.length(name, *s, 1, 128) {
		return "", nil
	}
	if chat.IsID(*s) {
		return *s, nil
	}
	if !v.pattern(name, *s, identifierPattern[kind]) {
		return "", nil
	}
	arn, ok := chat.ParseARN(*s)
	if !ok || arn.Kind != kind {
		v.add(name, "must be a %s ARN", kind.Noun())
		return "", nil
	}
	if arn.Region != h.cfg.Region || arn.Account != h.cfg.AccountID || !chat.IsID(arn.ID) {
		return arn.ID, chat.NotFound(kind, arn.ID)
	}
	return arn.ID, nil
}

// resourceARN validates the {resourceArn} label of the tagging operations.
// The model's ResourceArn pattern has a bug (`[a-z-]` matches one character
// and so rejects every real ARN), so the label is checked against the two real
// ARN shapes instead.
func (h *Handler) resourceARN(v *validator, s string) (kind chat.Kind, id string, missing error) {
	if !v.length("resourceArn", s, 1, 128) {
		return "", "", nil
	}
	arn, ok := chat.ParseARN(s)
	if !ok {
		v.add("resourceArn", "must be a room or logging-configuration ARN")
		return "", "", nil
	}
	if arn.Region != h.cfg.Region || arn.Account != h.cfg.AccountID || !chat.IsID(arn.ID) {
		return arn.Kind, arn.ID, chat.NotFound(arn.Kind, arn.ID)
	}
	return arn.Kind, arn.ID, nil
}
