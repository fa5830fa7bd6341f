-- Times are int64 Unix nanoseconds in UTC: exact for chat.Now()'s microsecond
-- values and ordered by plain integer comparison.
CREATE TABLE rooms (
    id              TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL,
    create_time     INTEGER NOT NULL,
    update_time     INTEGER NOT NULL,
    max_rate        INTEGER NOT NULL,
    max_length      INTEGER NOT NULL,
    -- has_review distinguishes a nil handler from one with an empty URI, so
    -- the value round-trips exactly.
    has_review      INTEGER NOT NULL,
    review_uri      TEXT    NOT NULL,
    review_fallback TEXT    NOT NULL,
    tags            TEXT    NOT NULL DEFAULT '{}'
) STRICT;

-- Serves ListRooms' order and its cursor without a sort.
CREATE INDEX rooms_list ON rooms (update_time DESC, id);

CREATE TABLE logging_configurations (
    id              TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL,
    create_time     INTEGER NOT NULL,
    update_time     INTEGER NOT NULL,
    s3_bucket       TEXT    NOT NULL,
    log_group       TEXT    NOT NULL,
    delivery_stream TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    tags            TEXT    NOT NULL DEFAULT '{}'
) STRICT;

CREATE INDEX logging_configurations_list ON logging_configurations (update_time DESC, id);

-- The foreign keys are the source of truth for references: a room's rows go
-- with it, and a configuration still referenced cannot be deleted.
CREATE TABLE room_logging_configurations (
    room_id  TEXT    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    lc_id    TEXT    NOT NULL REFERENCES logging_configurations (id) ON DELETE RESTRICT,
    PRIMARY KEY (room_id, position)
) STRICT, WITHOUT ROWID;

-- Needed by the RESTRICT check and the LoggingConfigurationID filter.
CREATE INDEX room_logging_configurations_lc ON room_logging_configurations (lc_id);
