-- Users banned from a room (the ivschatd BanUser extension). A room's bans go
-- with it. expires_at NULL: until unbanned. Rows whose expires_at has passed
-- are ignored by every read and deleted by the room's next ban or unban.
-- user_id uses the "C" collation so that ListBans' order and its cursor
-- compare bytes, as on SQLite.
CREATE TABLE room_bans (
    room_id    text COLLATE "C" NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    text COLLATE "C" NOT NULL,
    reason     text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (room_id, user_id)
);
