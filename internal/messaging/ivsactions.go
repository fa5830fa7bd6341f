package messaging

import (
	"bytes"
	"sync/atomic"
)

// Action is the value of the Amazon IVS Chat CloudWatch dimension Action,
// by which the Requests and Deliveries metrics are counted.
type Action uint8

// The actions. SEND_MESSAGE, DELETE_MESSAGE and DISCONNECT_USER are the
// messaging API's actions; SEND_EVENT is the control plane's SendEvent,
// which AWS does not name as an Action value (see docs/metrics.md). The
// control plane's DeleteMessage and DisconnectUser count as the WebSocket
// actions of the same name: they broadcast the same events.
const (
	ActionSendMessage Action = iota
	ActionDeleteMessage
	ActionDisconnectUser
	ActionSendEvent
	numActions
	noAction = numActions // a frame that is not the result of a request
)

var actionNames = [numActions]string{"SEND_MESSAGE", "DELETE_MESSAGE", "DISCONNECT_USER", "SEND_EVENT"}

func (a Action) String() string {
	if a >= numActions {
		return ""
	}
	return actionNames[a]
}

// actionCounts counts something per Action.
type actionCounts [numActions]uint64

func (a *actionCounts) byName() map[string]uint64 {
	m := make(map[string]uint64, numActions)
	for i, n := range a {
		m[actionNames[i]] = n
	}
	return m
}

// atomicActionCounts is actionCounts shared between goroutines.
type atomicActionCounts [numActions]atomic.Uint64

// add adds the non-zero counts of d: a write batch usually holds frames of
// one action, so this is one atomic add per batch, not per frame.
func (a *atomicActionCounts) add(d *actionCounts) {
	for i, n := range d {
		if n != 0 {
			a[i].Add(n)
		}
	}
}

func (a *atomicActionCounts) load() actionCounts {
	var c actionCounts
	for i := range a {
		c[i] = a[i].Load()
	}
	return c
}

// actionOfRequest maps a client request's Action field to its Action.
func actionOfRequest(s string) Action {
	switch s {
	case actionSendMessage:
		return ActionSendMessage
	case actionDeleteMessage:
		return ActionDeleteMessage
	case actionDisconnectUser:
		return ActionDisconnectUser
	}
	return noAction
}

var (
	messagePrefix   = []byte(`{"Type":"MESSAGE"`)
	eventPrefix     = []byte(`{"Type":"EVENT"`)
	eventNameField  = []byte(`,"EventName":"`)
	deleteEventName = []byte(eventDeleteMessage + `"`)
	discoEventName  = []byte(eventDisconnectUser + `"`)
)

// actionOfFrame tells which action produced a room frame (a WebSocket text
// frame as encodeMessage or encodeEvent build it, possibly from another
// node). It runs once per frame and node when the frame enters the room's
// ring, not per recipient. The first `,"EventName":"` is the field itself:
// inside a JSON string every quote is escaped.
func actionOfFrame(frame []byte) Action {
	if len(frame) < 2 {
		return noAction
	}
	p := framePayload(frame)
	switch {
	case bytes.HasPrefix(p, messagePrefix):
		return ActionSendMessage
	case bytes.HasPrefix(p, eventPrefix):
		i := bytes.Index(p, eventNameField)
		if i < 0 {
			return ActionSendEvent
		}
		name := p[i+len(eventNameField):]
		switch {
		case bytes.HasPrefix(name, deleteEventName):
			return ActionDeleteMessage
		case bytes.HasPrefix(name, discoEventName):
			return ActionDisconnectUser
		}
		return ActionSendEvent
	}
	return noAction
}
