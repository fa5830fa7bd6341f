package api

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/clusterstats"
)

// The ivschatd extension operations: live figures the AWS API has no
// operation for (the web console's room and server pages), and bans
// (bans.go). They are
// POST /ivschatd/<Operation>, a path no operation of the model can have,
// signed and answered exactly like the standard operations, and authorized
// with the actions ivschatd:<Operation>, which a policy's ivschat:*
// does not match.

// extensionPrefix is the exact path prefix of the extension operations.
const extensionPrefix = "/ivschatd/"

// extensionOperations maps each extension's name to its binding.
var extensionOperations = map[string]*operation{}

func init() {
	for _, op := range []*operation{
		{"GetRoomStats", http.MethodPost, http.StatusOK, (*Handler).getRoomStats},
		{"ListRoomConnections", http.MethodPost, http.StatusOK, (*Handler).listRoomConnections},
		{"GetServerStatus", http.MethodPost, http.StatusOK, (*Handler).getServerStatus},
		{"BanUser", http.MethodPost, http.StatusOK, (*Handler).banUser},
		{"UnbanUser", http.MethodPost, http.StatusOK, (*Handler).unbanUser},
		{"ListBans", http.MethodPost, http.StatusOK, (*Handler).listBans},
	} {
		extensionOperations[op.name] = op
	}
}

// routeExtension finds the extension operation of a request, or nil when
// the path names none (the request is then routed as before the
// extensions existed).
func routeExtension(r *http.Request) *operation {
	name, ok := strings.CutPrefix(r.URL.EscapedPath(), extensionPrefix)
	if !ok {
		return nil
	}
	return extensionOperations[name]
}

// actionOf is the policy action of an operation.
func actionOf(op *operation) string {
	if extensionOperations[op.name] == op {
		return "ivschatd:" + op.name
	}
	return "ivschat:" + op.name
}

// ServerInfo is what the server tells of itself for GetServerStatus.
type ServerInfo struct {
	Version, Commit, Node string
	StartTime             time.Time
	Mode                  string // single or cluster
	Ready                 bool
	Checks                []Check
}

// Check is one dependency's readiness.
type Check struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Extensions is what the extension operations need of the server: the
// cluster's live figures and the server's own description.
type Extensions interface {
	clusterstats.Gatherer
	ServerInfo(ctx context.Context) ServerInfo
}

// Windows of the figures, as the gateway counts them.
const (
	rateWindowSeconds   = 10
	errorsWindowSeconds = 60
)

type roomStatsOutput struct {
	ARN                 string            `json:"arn"`
	ID                  string            `json:"id"`
	Connections         int               `json:"connections"`
	Users               int               `json:"users"`
	MessagesPerSecond   float64           `json:"messagesPerSecond"`
	EventsPerSecond     float64           `json:"eventsPerSecond"`
	RateWindowSeconds   int               `json:"rateWindowSeconds"`
	ErrorsByCode        map[string]uint64 `json:"errorsByCode"`
	ErrorsWindowSeconds int               `json:"errorsWindowSeconds"`
	Nodes               int               `json:"nodes"`
	NodesMissing        int               `json:"nodesMissing"`
	SampledAt           string            `json:"sampledAt"`
}

// extensionRoom validates {"identifier"} (shared by the room operations'
// inputs), authorizes the call on the room and checks that it exists.
func (h *Handler) extensionRoom(c *call, v *validator, ident *string) (string, error) {
	id, missing := h.identifier(v, "identifier", ident, chat.KindRoom, true)
	if err := v.err(); err != nil {
		return "", err
	}
	if err := h.authorize(c, h.arn(chat.KindRoom, id)); err != nil {
		return "", err
	}
	if missing != nil {
		return "", missing
	}
	if _, err := h.store.GetRoom(c.ctx, id); err != nil {
		return "", err
	}
	return id, nil
}

func (h *Handler) getRoomStats(c *call) (any, error) {
	var in roomIdentifierInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	id, err := h.extensionRoom(c, &v, in.Identifier)
	if err != nil {
		return nil, err
	}
	st, err := h.ext.RoomStats(c.ctx, id)
	if err != nil {
		return nil, err
	}
	out := roomStatsOutput{
		ARN:                 h.arn(chat.KindRoom, id),
		ID:                  id,
		Connections:         st.Connections,
		Users:               st.Users,
		MessagesPerSecond:   float64(st.Messages) / rateWindowSeconds,
		EventsPerSecond:     float64(st.Events) / rateWindowSeconds,
		RateWindowSeconds:   rateWindowSeconds,
		ErrorsByCode:        make(map[string]uint64, len(st.Errors)),
		ErrorsWindowSeconds: errorsWindowSeconds,
		Nodes:               st.Nodes,
		NodesMissing:        st.NodesMissing,
		SampledAt:           formatTime(h.now()),
	}
	for code, n := range st.Errors {
		out.ErrorsByCode[strconv.Itoa(code)] = n
	}
	return out, nil
}

type listRoomConnectionsInput struct {
	Identifier *string `json:"identifier"`
	MaxResults *int    `json:"maxResults"`
	NextToken  *string `json:"nextToken"`
}

type connectionJSON struct {
	UserID       string            `json:"userId"`
	ConnectedAt  string            `json:"connectedAt"`
	Node         string            `json:"node"`
	Capabilities []string          `json:"capabilities"`
	Attributes   map[string]string `json:"attributes"`
}

type listRoomConnectionsOutput struct {
	Connections  []connectionJSON `json:"connections"`
	NextToken    string           `json:"nextToken,omitempty"`
	Nodes        int              `json:"nodes"`
	NodesMissing int              `json:"nodesMissing"`
}

func (h *Handler) listRoomConnections(c *call) (any, error) {
	var in listRoomConnectionsInput
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	var v validator
	v.intRange("maxResults", in.MaxResults, 1, 1000)
	v.str("nextToken", in.NextToken, false, 0, 1024, nil)
	id, err := h.extensionRoom(c, &v, in.Identifier)
	if err != nil {
		return nil, err
	}
	after, err := h.decodeConnectionToken(id, deref(in.NextToken))
	if err != nil {
		return nil, err
	}
	limit := derefOr(in.MaxResults, 50)
	page, err := h.ext.RoomConnections(c.ctx, id, after, limit)
	if err != nil {
		return nil, err
	}
	out := listRoomConnectionsOutput{
		Connections:  make([]connectionJSON, 0, len(page.Connections)),
		Nodes:        page.Nodes,
		NodesMissing: page.NodesMissing,
	}
	for _, cn := range page.Connections {
		caps := cn.Capabilities
		if caps == nil {
			caps = []string{}
		}
		out.Connections = append(out.Connections, connectionJSON{
			UserID:       cn.UserID,
			ConnectedAt:  formatTime(cn.ConnectedAt),
			Node:         cn.Node,
			Capabilities: caps,
			Attributes:   nonNilTags(cn.Attributes),
		})
	}
	if page.More && len(page.Connections) > 0 {
		out.NextToken = h.encodeConnectionToken(id, clusterstats.CursorOf(page.Connections[len(page.Connections)-1]))
	}
	return out, nil
}

type serverStatusOutput struct {
	Version       string        `json:"version"`
	Commit        string        `json:"commit"`
	Node          string        `json:"node"`
	StartTime     string        `json:"startTime"`
	UptimeSeconds int64         `json:"uptimeSeconds"`
	Mode          string        `json:"mode"`
	Ready         bool          `json:"ready"`
	Checks        []Check       `json:"checks"`
	Totals        totalsJSON    `json:"totals"`
	Nodes         []nodeJSON    `json:"nodes"`
	NodesMissing  int           `json:"nodesMissing"`
	ChatLog       []chatLogJSON `json:"chatLog"`
	SampledAt     string        `json:"sampledAt"`
}

type totalsJSON struct {
	Connections          int64   `json:"connections"`
	RoomsWithConnections int     `json:"roomsWithConnections"`
	DeliveriesPerSecond  float64 `json:"deliveriesPerSecond"`
	MessagesPerSecond    float64 `json:"messagesPerSecond"`
	EventsPerSecond      float64 `json:"eventsPerSecond"`
}

type nodeJSON struct {
	Node                 string  `json:"node"`
	Version              string  `json:"version"`
	StartTime            string  `json:"startTime"`
	Connections          int64   `json:"connections"`
	RoomsWithConnections int     `json:"roomsWithConnections"`
	DeliveriesPerSecond  float64 `json:"deliveriesPerSecond"`
	MessagesPerSecond    float64 `json:"messagesPerSecond"`
	EventsPerSecond      float64 `json:"eventsPerSecond"`
}

type chatLogJSON struct {
	Node                 string `json:"node"`
	Destination          string `json:"destination"`
	Type                 string `json:"type"`
	SpoolBytes           int64  `json:"spoolBytes"`
	SpooledRecords       uint64 `json:"spooledRecords"`
	DeliveredRecords     uint64 `json:"deliveredRecords"`
	DroppedRecords       uint64 `json:"droppedRecords"`
	FailedToSpoolRecords uint64 `json:"failedToSpoolRecords"`
	FailedAttempts       uint64 `json:"failedAttempts"`
}

func (h *Handler) getServerStatus(c *call) (any, error) {
	var in struct{}
	if err := decodeBody(c.body, &in); err != nil {
		return nil, err
	}
	if err := h.authorize(c, "*"); err != nil {
		return nil, err
	}
	info := h.ext.ServerInfo(c.ctx)
	st, err := h.ext.Status(c.ctx)
	if err != nil {
		return nil, err
	}
	now := h.now()
	out := serverStatusOutput{
		Version:       info.Version,
		Commit:        info.Commit,
		Node:          info.Node,
		StartTime:     formatTime(info.StartTime),
		UptimeSeconds: int64(now.Sub(info.StartTime) / time.Second),
		Mode:          info.Mode,
		Ready:         info.Ready,
		Checks:        slices.Clone(info.Checks),
		Nodes:         make([]nodeJSON, 0, len(st.Nodes)),
		NodesMissing:  st.NodesMissing,
		ChatLog:       []chatLogJSON{},
		SampledAt:     formatTime(now),
	}
	if out.Checks == nil {
		out.Checks = []Check{}
	}
	for _, n := range st.Nodes {
		out.Totals.Connections += n.Connections
		out.Totals.RoomsWithConnections += n.Rooms
		out.Totals.DeliveriesPerSecond += n.DeliveriesPerSecond
		out.Totals.MessagesPerSecond += n.MessagesPerSecond
		out.Totals.EventsPerSecond += n.EventsPerSecond
		out.Nodes = append(out.Nodes, nodeJSON{
			Node:                 n.Node,
			Version:              n.Version,
			StartTime:            formatTime(n.StartTime),
			Connections:          n.Connections,
			RoomsWithConnections: n.Rooms,
			DeliveriesPerSecond:  n.DeliveriesPerSecond,
			MessagesPerSecond:    n.MessagesPerSecond,
			EventsPerSecond:      n.EventsPerSecond,
		})
		for _, d := range n.ChatLog {
			out.ChatLog = append(out.ChatLog, chatLogJSON{
				Node:                 n.Node,
				Destination:          d.Destination,
				Type:                 d.Type,
				SpoolBytes:           d.SpoolBytes,
				SpooledRecords:       d.Spooled,
				DeliveredRecords:     d.Delivered,
				DroppedRecords:       d.Dropped,
				FailedToSpoolRecords: d.FailedToSpool,
				FailedAttempts:       d.FailedAttempts,
			})
		}
	}
	slices.SortStableFunc(out.ChatLog, func(a, b chatLogJSON) int {
		if c := strings.Compare(a.Destination, b.Destination); c != 0 {
			return c
		}
		return strings.Compare(a.Node, b.Node)
	})
	return out, nil
}
