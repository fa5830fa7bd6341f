package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// operation is one of the 17 control-plane operations.
type operation struct {
	name   string
	method string
	status int // success status: 200, or 204 for the two Delete* operations
	serve  func(h *Handler, c *call) (any, error)
}

// operations maps each operation name to its binding (spec/control-plane.md §8).
// All but the tagging operations are POST /<Name>; the tagging operations
// share the path /tags/{resourceArn} and differ by method.
var operations = map[string]*operation{}

func init() {
	for _, op := range []*operation{
		{"CreateChatToken", http.MethodPost, http.StatusOK, (*Handler).createChatToken},
		{"CreateLoggingConfiguration", http.MethodPost, http.StatusOK, (*Handler).createLoggingConfiguration},
		{"CreateRoom", http.MethodPost, http.StatusOK, (*Handler).createRoom},
		{"DeleteLoggingConfiguration", http.MethodPost, http.StatusNoContent, (*Handler).deleteLoggingConfiguration},
		{"DeleteMessage", http.MethodPost, http.StatusOK, (*Handler).deleteMessage},
		{"DeleteRoom", http.MethodPost, http.StatusNoContent, (*Handler).deleteRoom},
		{"DisconnectUser", http.MethodPost, http.StatusOK, (*Handler).disconnectUser},
		{"GetLoggingConfiguration", http.MethodPost, http.StatusOK, (*Handler).getLoggingConfiguration},
		{"GetRoom", http.MethodPost, http.StatusOK, (*Handler).getRoom},
		{"ListLoggingConfigurations", http.MethodPost, http.StatusOK, (*Handler).listLoggingConfigurations},
		{"ListRooms", http.MethodPost, http.StatusOK, (*Handler).listRooms},
		{"SendEvent", http.MethodPost, http.StatusOK, (*Handler).sendEvent},
		{"UpdateLoggingConfiguration", http.MethodPost, http.StatusOK, (*Handler).updateLoggingConfiguration},
		{"UpdateRoom", http.MethodPost, http.StatusOK, (*Handler).updateRoom},
		{"ListTagsForResource", http.MethodGet, http.StatusOK, (*Handler).listTagsForResource},
		{"TagResource", http.MethodPost, http.StatusOK, (*Handler).tagResource},
		{"UntagResource", http.MethodDelete, http.StatusOK, (*Handler).untagResource},
	} {
		operations[op.name] = op
	}
}

var tagOperationByMethod = map[string]string{
	http.MethodGet:    "ListTagsForResource",
	http.MethodPost:   "TagResource",
	http.MethodDelete: "UntagResource",
}

// route finds the operation of a request and, for the tagging operations, the
// unescaped {resourceArn} label. It works on the escaped path because SDKs
// percent-encode the ARN and its "/" must not split the path. A trailing
// path prefix in the client's endpoint is tolerated by matching the last
// segment (or the /tags/ part).
func (h *Handler) route(r *http.Request) (*operation, string, error) {
	if h.ext != nil {
		if op := routeExtension(r); op != nil {
			if r.Method != op.method {
				return nil, "", unknownOperation(r)
			}
			return op, "", nil
		}
	}
	path := r.URL.EscapedPath()
	if i := strings.Index(path, "/tags/"); i >= 0 {
		name := tagOperationByMethod[r.Method]
		if name == "" {
			return nil, "", unknownOperation(r)
		}
		label, err := url.PathUnescape(path[i+len("/tags/"):])
		if err != nil || label == "" {
			return nil, "", chat.Validation(chat.FieldError{Name: "resourceArn", Message: "must be a percent-encoded resource ARN"})
		}
		return operations[name], label, nil
	}
	name := path[strings.LastIndexByte(path, '/')+1:]
	op := operations[name]
	if op == nil || op.method != r.Method || strings.HasPrefix(name, "ListTags") || name == "TagResource" || name == "UntagResource" {
		return nil, "", unknownOperation(r)
	}
	return op, "", nil
}

func unknownOperation(r *http.Request) error {
	return chat.BadRequest(chat.ReasonUnknownOperation, "unknown operation: "+r.Method+" "+r.URL.Path)
}
