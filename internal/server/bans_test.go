package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/gobwas/ws"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/sigv4"
)

// The ban extension operations (BanUser, UnbanUser, ListBans) through the
// real server: signed calls, real chat connections, one node on SQLite and
// two on PostgreSQL and Redis.

type banBody struct {
	RoomARN   string  `json:"roomArn"`
	UserID    string  `json:"userId"`
	Reason    string  `json:"reason"`
	CreatedAt string  `json:"createdAt"`
	ExpiresAt *string `json:"expiresAt"`
}

type listBansBody struct {
	Bans      []banBody `json:"bans"`
	NextToken string    `json:"nextToken"`
}

func banUser(t *testing.T, ts *testServer, body string) banBody {
	t.Helper()
	var b banBody
	callExtension(t, ts, "BanUser", body).decode(t, &b)
	return b
}

func unbanUser(t *testing.T, ts *testServer, roomARN, user string) {
	t.Helper()
	r := callExtension(t, ts, "UnbanUser", `{"roomIdentifier":"`+roomARN+`","userId":"`+user+`"}`)
	if r.status != http.StatusOK || string(r.body) != "{}" {
		t.Fatalf("UnbanUser: %d %s", r.status, r.body)
	}
}

func listBans(t *testing.T, ts *testServer, body string) listBansBody {
	t.Helper()
	var l listBansBody
	callExtension(t, ts, "ListBans", body).decode(t, &l)
	return l
}

// wantKicked reads the aws:DISCONNECT_USER event for user and then the
// close frame from conn, as DisconnectUser delivers them.
func wantKicked(t *testing.T, conn net.Conn, user, reason string) {
	t.Helper()
	wantDisconnectEvent(t, conn, user, reason)
	code, why := readClose(t, conn)
	if code != ws.StatusNormalClosure || why != reason {
		t.Errorf("close %d %q, want 1000 %q", code, why, reason)
	}
}

func wantDisconnectEvent(t *testing.T, conn net.Conn, user, reason string) {
	t.Helper()
	var ev struct {
		Type, EventName string
		Attributes      map[string]string
	}
	if err := json.Unmarshal(readText(t, conn), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "EVENT" || ev.EventName != "aws:DISCONNECT_USER" || ev.Attributes["UserId"] != user || ev.Attributes["Reason"] != reason {
		t.Errorf("event %+v, want aws:DISCONNECT_USER of %s (%s)", ev, user, reason)
	}
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return tm
}

// shortenBan replaces the user's ban with one ending after d, through the
// server's store exactly as a BanUser would (durationInMinutes has a
// one-minute floor, too long to wait for in a test).
func shortenBan(t *testing.T, ts *testServer, roomID, user string, d time.Duration) {
	t.Helper()
	now := chat.Now()
	if _, err := ts.srv.store.BanUser(ctxT(t), &chat.Ban{RoomID: roomID, UserID: user, CreatedAt: now, ExpiresAt: now.Add(d)}); err != nil {
		t.Fatal(err)
	}
}

func TestBansSingleNode(t *testing.T) {
	ts := startServer(t, "", nil)
	room := createRoom(t, ts.client(), "bans")
	arn := *room.Arn
	m1 := dialChat(t, ts.URL, chatToken(t, ts.client(), arn, "mallory"))
	defer m1.Close()
	m2 := dialChat(t, ts.URL, chatToken(t, ts.client(), arn, "mallory"))
	defer m2.Close()
	alice := dialChat(t, ts.URL, chatToken(t, ts.client(), arn, "alice"))
	defer alice.Close()

	before := time.Now()
	b := banUser(t, ts, `{"roomIdentifier":"`+arn+`","userId":"mallory","reason":"spam"}`)
	if b.RoomARN != arn || b.UserID != "mallory" || b.Reason != "spam" || b.ExpiresAt != nil {
		t.Errorf("BanUser = %+v", b)
	}
	if at := parseTime(t, b.CreatedAt); at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("createdAt %s", b.CreatedAt)
	}
	// Both of mallory's connections get the event and the close, as with
	// DisconnectUser; alice gets the event and stays.
	wantKicked(t, m1, "mallory", "spam")
	wantKicked(t, m2, "mallory", "spam")
	wantDisconnectEvent(t, alice, "mallory", "spam")

	// A fresh token is refused with 403, and stays unused.
	tok := chatToken(t, ts.client(), arn, "mallory")
	for range 2 {
		if st := dialStatus(t, ts.URL, tok); st != http.StatusForbidden {
			t.Fatalf("banned user's handshake: %d, want 403", st)
		}
	}
	// Only this room: another room lets mallory in.
	other := createRoom(t, ts.client(), "other")
	dialChat(t, ts.URL, chatToken(t, ts.client(), *other.Arn, "mallory")).Close()

	l := listBans(t, ts, `{"roomIdentifier":"`+arn+`"}`)
	if len(l.Bans) != 1 || l.Bans[0].UserID != "mallory" || l.Bans[0].Reason != "spam" || l.Bans[0].CreatedAt != b.CreatedAt ||
		l.Bans[0].ExpiresAt != nil || l.Bans[0].RoomARN != "" || l.NextToken != "" {
		t.Errorf("ListBans = %+v", l)
	}

	// The refusals are counted under their reason.
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(m, []byte(`ivschatd_messaging_handshakes_rejected_total{reason="banned"} 2`)) {
		t.Error("the metrics do not count 2 handshakes refused as banned")
	}

	// UnbanUser lets mallory in at once, with the token refused before.
	unbanUser(t, ts, arn, "mallory")
	dialChat(t, ts.URL, tok).Close()
	unbanUser(t, ts, arn, "mallory") // idempotent
	if l := listBans(t, ts, `{"roomIdentifier":"`+*room.Id+`"}`); len(l.Bans) != 0 {
		t.Errorf("ListBans after unban = %+v", l)
	}

	// A timed ban: expiresAt is durationInMinutes after createdAt, and the
	// user is let in once it has passed.
	b = banUser(t, ts, `{"roomIdentifier":"`+*room.Id+`","userId":"mallory","durationInMinutes":1}`)
	if b.ExpiresAt == nil || parseTime(t, *b.ExpiresAt).Sub(parseTime(t, b.CreatedAt)) != time.Minute || b.Reason != "" {
		t.Fatalf("timed BanUser = %+v", b)
	}
	shortenBan(t, ts, *room.Id, "mallory", time.Second)
	tok = chatToken(t, ts.client(), arn, "mallory")
	if st := dialStatus(t, ts.URL, tok); st != http.StatusForbidden {
		t.Fatalf("during a timed ban: %d, want 403", st)
	}
	checkFor(t, 5*time.Second, 100*time.Millisecond, func() error {
		if st := dialStatus(t, ts.URL, tok); st != http.StatusSwitchingProtocols {
			return fmt.Errorf("after the ban expired: %d", st)
		}
		return nil
	})
	if l := listBans(t, ts, `{"roomIdentifier":"`+arn+`"}`); len(l.Bans) != 0 {
		t.Errorf("ListBans lists an expired ban: %+v", l)
	}

}

// TestBansDenied: the ban operations need their ivschatd: actions;
// ivschat:* (every standard action, DisconnectUser included) does not grant
// them.
func TestBansDenied(t *testing.T) {
	const key, secret = "AKIDBANSTANDARD00001", "standard-secret-0123456789abcdefghijklm"
	const mod, modSecret = "AKIDBANMODERATOR0001", "moderator-secret-0123456789abcdefghijkl"
	ts := startServer(t, "", func(c *config.Config) {
		c.AccessKeys = append(c.AccessKeys,
			config.AccessKey{AccessKeyID: key, SecretAccessKey: secret,
				Policy: sigv4.Policy{Statements: []sigv4.Statement{{Actions: []string{"ivschat:*"}, Resources: []string{"*"}}}}},
			config.AccessKey{AccessKeyID: mod, SecretAccessKey: modSecret,
				Policy: sigv4.Policy{Statements: []sigv4.Statement{{Actions: []string{"ivschatd:BanUser", "ivschatd:ListBans"}, Resources: []string{"arn:aws:ivschat:*:*:room/*"}}}}})
	})
	room := createRoom(t, ts.client(), "denied")
	for _, c := range []struct{ op, body string }{
		{"BanUser", `{"roomIdentifier":"` + *room.Arn + `","userId":"u"}`},
		{"UnbanUser", `{"roomIdentifier":"` + *room.Arn + `","userId":"u"}`},
		{"ListBans", `{"roomIdentifier":"` + *room.Arn + `"}`},
	} {
		r := callExtension(t, ts, c.op, c.body, key, secret)
		var body struct{ Message string }
		json.Unmarshal(r.body, &body)
		want := "User: " + key + " is not authorized to perform: ivschatd:" + c.op + " on resource: " + *room.Arn
		if r.status != http.StatusForbidden || r.errType != "AccessDeniedException" || body.Message != want {
			t.Errorf("%s: %d %s %q, want 403 AccessDeniedException %q", c.op, r.status, r.errType, body.Message, want)
		}
	}
	// The moderator key may ban and list, not unban.
	if r := callExtension(t, ts, "BanUser", `{"roomIdentifier":"`+*room.Arn+`","userId":"u"}`, mod, modSecret); r.status != http.StatusOK {
		t.Errorf("moderator BanUser: %d %s", r.status, r.body)
	}
	if r := callExtension(t, ts, "ListBans", `{"roomIdentifier":"`+*room.Arn+`"}`, mod, modSecret); r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"userId":"u"`)) {
		t.Errorf("moderator ListBans: %d %s", r.status, r.body)
	}
	if r := callExtension(t, ts, "UnbanUser", `{"roomIdentifier":"`+*room.Arn+`","userId":"u"}`, mod, modSecret); r.status != http.StatusForbidden || r.errType != "AccessDeniedException" {
		t.Errorf("moderator UnbanUser: %d %s", r.status, r.body)
	}
	// Unsigned: refused before anything else.
	resp, err := http.Post(ts.URL+"/ivschatd/BanUser", "application/json", strings.NewReader(`{"roomIdentifier":"`+*room.Arn+`","userId":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned BanUser: %d, want 403", resp.StatusCode)
	}
	if l := listBans(t, ts, `{"roomIdentifier":"`+*room.Arn+`"}`); len(l.Bans) != 1 {
		t.Errorf("bans %+v, want only the moderator's", l)
	}
}

// TestBansValidation: bad input gets the standard typed errors, and
// ListBans pages like ListRooms.
func TestBansValidation(t *testing.T) {
	ts := startServer(t, "", nil)
	room := createRoom(t, ts.client(), "v")
	other := createRoom(t, ts.client(), "other")
	arn := *room.Arn
	var users []string
	for i := range 5 {
		u := fmt.Sprintf("user-%d", i)
		users = append(users, u)
		banUser(t, ts, `{"roomIdentifier":"`+arn+`","userId":"`+u+`","reason":"r"}`)
	}
	// Pages of two, in user ID order, the last without a nextToken.
	var got []string
	var first listBansBody
	token := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("ListBans does not end")
		}
		body := `{"roomIdentifier":"` + arn + `","maxResults":2`
		if token != "" {
			body += `,"nextToken":"` + token + `"`
		}
		p := listBans(t, ts, body+"}")
		if pages == 0 {
			first = p
		}
		if len(p.Bans) > 2 {
			t.Fatalf("page of %d", len(p.Bans))
		}
		for _, b := range p.Bans {
			got = append(got, b.UserID)
		}
		if token = p.NextToken; token == "" {
			break
		}
	}
	if strings.Join(got, ",") != strings.Join(users, ",") {
		t.Errorf("ListBans pages %v, want %v", got, users)
	}
	// The default page holds them all.
	if l := listBans(t, ts, `{"roomIdentifier":"`+arn+`"}`); len(l.Bans) != 5 || l.NextToken != "" {
		t.Errorf("default page %+v", l)
	}

	forged := []byte(first.NextToken)
	forged[len(forged)/2] ^= 1
	missing := "arn:aws:ivschat:us-west-2:123456789012:room/AbCdEfGhIjKl"
	elsewhere := "arn:aws:ivschat:eu-west-1:123456789012:room/" + *room.Id
	long := strings.Repeat("x", 129)
	for _, c := range []struct {
		op, body, errType string
		fields            []string
		status            int
	}{
		{"BanUser", `{}`, "ValidationException", []string{"roomIdentifier", "userId"}, 400},
		{"BanUser", `{"roomIdentifier":"not an arn","userId":"u"}`, "ValidationException", []string{"roomIdentifier"}, 400},
		{"BanUser", `{"roomIdentifier":"` + arn + `","userId":""}`, "ValidationException", []string{"userId"}, 400},
		{"BanUser", `{"roomIdentifier":"` + arn + `","userId":"` + long + `"}`, "ValidationException", []string{"userId"}, 400},
		{"BanUser", `{"roomIdentifier":"` + arn + `","userId":"u","reason":""}`, "ValidationException", []string{"reason"}, 400},
		{"BanUser", `{"roomIdentifier":"` + arn + `","userId":"u","reason":"` + strings.Repeat("r", 257) + `"}`, "ValidationException", []string{"reason"}, 400},
		{"BanUser", `{"roomIdentifier":"` + arn + `","userId":"u","durationInMinutes":0}`, "ValidationException", []string{"durationInMinutes"}, 400},
		{"BanUser", `{"roomIdentifier":"` + arn + `","userId":"u","durationInMinutes":525601}`, "ValidationException", []string{"durationInMinutes"}, 400},
		{"BanUser", `{"roomIdentifier":"` + arn + `","userId":"u","durationInMinutes":"5"}`, "ValidationException", []string{"durationInMinutes"}, 400},
		{"BanUser", `{"roomIdentifier":"` + missing + `","userId":"u"}`, "ResourceNotFoundException", nil, 404},
		{"BanUser", `{"roomIdentifier":"` + elsewhere + `","userId":"u"}`, "ResourceNotFoundException", nil, 404},
		{"UnbanUser", `{"roomIdentifier":"` + arn + `"}`, "ValidationException", []string{"userId"}, 400},
		{"UnbanUser", `{"roomIdentifier":"` + missing + `","userId":"u"}`, "ResourceNotFoundException", nil, 404},
		{"ListBans", `{}`, "ValidationException", []string{"roomIdentifier"}, 400},
		{"ListBans", `{"roomIdentifier":"` + missing + `"}`, "ResourceNotFoundException", nil, 404},
		{"ListBans", `{"roomIdentifier":"` + arn + `","maxResults":0}`, "ValidationException", []string{"maxResults"}, 400},
		{"ListBans", `{"roomIdentifier":"` + arn + `","maxResults":51}`, "ValidationException", []string{"maxResults"}, 400},
		{"ListBans", `{"roomIdentifier":"` + arn + `","nextToken":"` + string(forged) + `"}`, "ValidationException", []string{"nextToken"}, 400},
		// A token is bound to its room.
		{"ListBans", `{"roomIdentifier":"` + *other.Arn + `","nextToken":"` + first.NextToken + `"}`, "ValidationException", []string{"nextToken"}, 400},
	} {
		r := callExtension(t, ts, c.op, c.body)
		var body struct {
			Message   string
			FieldList []struct{ Name string }
		}
		json.Unmarshal(r.body, &body)
		var fields []string
		for _, f := range body.FieldList {
			fields = append(fields, f.Name)
		}
		if r.status != c.status || r.errType != c.errType || (c.fields != nil && strings.Join(fields, ",") != strings.Join(c.fields, ",")) {
			t.Errorf("%s %s: %d %s %s, want %d %s on %v", c.op, c.body, r.status, r.errType, r.body, c.status, c.errType, c.fields)
		}
	}
	// Neither ListRooms nor ListRoomConnections takes a bans token.
	if _, err := ts.client().ListRooms(ctxT(t), &ivschat.ListRoomsInput{NextToken: &first.NextToken}); err == nil {
		t.Error("ListRooms accepted a ListBans token")
	}
	if r := callExtension(t, ts, "ListRoomConnections", `{"identifier":"`+arn+`","nextToken":"`+first.NextToken+`"}`); r.status != http.StatusBadRequest {
		t.Errorf("ListRoomConnections with a ListBans token: %d %s", r.status, r.body)
	}
}

// TestBansSurviveRestart: a ban is in the store, so a restarted node on
// the same data dir still refuses the user.
func TestBansSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, nil)
	room := createRoom(t, ts.client(), "persist")
	arn := *room.Arn
	b := banUser(t, ts, `{"roomIdentifier":"`+arn+`","userId":"mallory","reason":"spam","durationInMinutes":60}`)
	ts.Stop()

	ts = startServer(t, dir, nil)
	tok := chatToken(t, ts.client(), arn, "mallory")
	if st := dialStatus(t, ts.URL, tok); st != http.StatusForbidden {
		t.Fatalf("after a restart the banned user's handshake: %d, want 403", st)
	}
	l := listBans(t, ts, `{"roomIdentifier":"`+arn+`"}`)
	if len(l.Bans) != 1 || l.Bans[0].UserID != "mallory" || l.Bans[0].Reason != "spam" || l.Bans[0].CreatedAt != b.CreatedAt ||
		l.Bans[0].ExpiresAt == nil || *l.Bans[0].ExpiresAt != *b.ExpiresAt {
		t.Errorf("ListBans after restart = %+v, want %+v", l, b)
	}
	unbanUser(t, ts, arn, "mallory")
	dialChat(t, ts.URL, tok).Close()
}

// TestBansCluster: two nodes on PostgreSQL and Redis. A ban through one
// node disconnects the user on both and keeps the user out of both at
// once; an unban through the other lets the user in on both at once; an
// expired ban keeps nobody out.
func TestBansCluster(t *testing.T) {
	a, b := startCluster(t, "")
	room := createRoom(t, a.client(), "bans-cluster")
	arn := *room.Arn
	mA := dialChat(t, a.URL, chatToken(t, a.client(), arn, "mallory"))
	defer mA.Close()
	mB := dialChat(t, b.URL, chatToken(t, a.client(), arn, "mallory"))
	defer mB.Close()
	aliceB := dialChat(t, b.URL, chatToken(t, a.client(), arn, "alice"))
	defer aliceB.Close()

	banUser(t, a, `{"roomIdentifier":"`+arn+`","userId":"mallory","reason":"spam"}`)
	wantKicked(t, mA, "mallory", "spam")
	wantKicked(t, mB, "mallory", "spam")
	wantDisconnectEvent(t, aliceB, "mallory", "spam")
	// Refused on both nodes at once (no wait: the handshake reads the store).
	for _, ts := range []*testServer{a, b} {
		if st := dialStatus(t, ts.URL, chatToken(t, ts.client(), arn, "mallory")); st != http.StatusForbidden {
			t.Errorf("banned user's handshake on %s: %d, want 403", ts.URL, st)
		}
	}
	// A room no node has connections in (so no node is subscribed to it).
	quiet := createRoom(t, b.client(), "quiet")
	banUser(t, b, `{"roomIdentifier":"`+*quiet.Arn+`","userId":"mallory"}`)
	if st := dialStatus(t, a.URL, chatToken(t, a.client(), *quiet.Arn, "mallory")); st != http.StatusForbidden {
		t.Errorf("banned user's handshake into a quiet room: %d, want 403", st)
	}
	// Both nodes list the bans.
	for _, ts := range []*testServer{a, b} {
		if l := listBans(t, ts, `{"roomIdentifier":"`+arn+`"}`); len(l.Bans) != 1 || l.Bans[0].UserID != "mallory" {
			t.Errorf("ListBans via %s = %+v", ts.URL, l)
		}
	}

	unbanUser(t, b, arn, "mallory")
	for _, ts := range []*testServer{a, b} {
		dialChat(t, ts.URL, chatToken(t, ts.client(), arn, "mallory")).Close()
	}

	// A timed ban ends on both nodes.
	banUser(t, b, `{"roomIdentifier":"`+arn+`","userId":"mallory","durationInMinutes":1}`)
	shortenBan(t, b, *room.Id, "mallory", time.Second)
	for _, ts := range []*testServer{a, b} {
		tok := chatToken(t, ts.client(), arn, "mallory")
		checkFor(t, 5*time.Second, 100*time.Millisecond, func() error {
			if st := dialStatus(t, ts.URL, tok); st != http.StatusSwitchingProtocols {
				return fmt.Errorf("after the ban expired, via %s: %d", ts.URL, st)
			}
			return nil
		})
	}
}
