-- Users banned from a room (the ivschatd BanUser extension). A room's bans go
-- with it. expires_at NULL: until unbanned. Rows whose expires_at has passed
-- are ignored by every read and deleted by the room's next ban or unban.
CREATE TABLE room_bans (
    room_id    TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (room_id, user_id)
) STRICT, WITHOUT ROWID;
