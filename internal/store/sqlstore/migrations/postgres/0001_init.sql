-- IDs use the "C" collation so that ORDER BY id and the list cursor compare
-- bytes, as the other stores and the API's page tokens assume; the
-- database's default collation (en_US.UTF-8, say) would order "a" before "B".
-- timestamptz keeps microseconds, which is why chat.Now() truncates to them.
CREATE TABLE rooms (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    name            text        NOT NULL,
    create_time     timestamptz NOT NULL,
    update_time     timestamptz NOT NULL,
    max_rate        integer     NOT NULL,
    max_length      integer     NOT NULL,
    -- has_review distinguishes a nil handler from one with an empty URI, so
    -- the value round-trips exactly.
    has_review      boolean     NOT NULL,
    review_uri      text        NOT NULL,
    review_fallback text        NOT NULL,
    tags            jsonb       NOT NULL DEFAULT '{}'
);

-- Serves ListRooms' order and its cursor without a sort.
CREATE INDEX rooms_list ON rooms (update_time DESC, id);

CREATE TABLE logging_configurations (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    name            text        NOT NULL,
    create_time     timestamptz NOT NULL,
    update_time     timestamptz NOT NULL,
    s3_bucket       text        NOT NULL,
    log_group       text        NOT NULL,
    delivery_stream text        NOT NULL,
    state           text        NOT NULL,
    tags            jsonb       NOT NULL DEFAULT '{}'
);

CREATE INDEX logging_configurations_list ON logging_configurations (update_time DESC, id);

-- The foreign keys are the source of truth for references: a room's rows go
-- with it, and a configuration still referenced cannot be deleted, even when
-- the delete races with a room update on another node.
CREATE TABLE room_logging_configurations (
    room_id  text COLLATE "C" NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    position integer NOT NULL,
    lc_id    text COLLATE "C" NOT NULL REFERENCES logging_configurations (id) ON DELETE RESTRICT,
    PRIMARY KEY (room_id, position)
);

-- Needed by the RESTRICT check and the LoggingConfigurationID filter.
CREATE INDEX room_logging_configurations_lc ON room_logging_configurations (lc_id);
