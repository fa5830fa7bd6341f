CREATE TABLE FIXTURE_SCHEMA.logging_configurations (
    id text NOT NULL COLLATE pg_catalog."C",
    name text NOT NULL,
    create_time timestamp with time zone NOT NULL,
    update_time timestamp with time zone NOT NULL,
    s3_bucket text NOT NULL,
    log_group text NOT NULL,
    delivery_stream text NOT NULL,
    state text NOT NULL,
    tags jsonb DEFAULT '{}'::jsonb NOT NULL
);

CREATE TABLE FIXTURE_SCHEMA.room_logging_configurations (
    room_id text NOT NULL COLLATE pg_catalog."C",
    "position" integer NOT NULL,
    lc_id text NOT NULL COLLATE pg_catalog."C"
);

CREATE TABLE FIXTURE_SCHEMA.rooms (
    id text NOT NULL COLLATE pg_catalog."C",
    name text NOT NULL,
    create_time timestamp with time zone NOT NULL,
    update_time timestamp with time zone NOT NULL,
    max_rate integer NOT NULL,
    max_length integer NOT NULL,
    has_review boolean NOT NULL,
    review_uri text NOT NULL,
    review_fallback text NOT NULL,
    tags jsonb DEFAULT '{}'::jsonb NOT NULL
);

CREATE TABLE FIXTURE_SCHEMA.schema_migrations (
    version integer NOT NULL
);

INSERT INTO FIXTURE_SCHEMA.logging_configurations VALUES ('lcFixture0001', 'lc', '2024-05-06 07:08:09.123456+00', '2024-05-06 07:08:10.123456+00', '', 'g', '', 'ACTIVE', '{"a": "b"}');
INSERT INTO FIXTURE_SCHEMA.logging_configurations VALUES ('lcFixture0002', '', '2024-05-06 07:08:09.123456+00', '2024-05-06 07:08:09.123456+00', 'bkt', '', '', 'ACTIVE', '{}');

INSERT INTO FIXTURE_SCHEMA.room_logging_configurations VALUES ('roomFixture01', 0, 'lcFixture0002');
INSERT INTO FIXTURE_SCHEMA.room_logging_configurations VALUES ('roomFixture01', 1, 'lcFixture0001');

INSERT INTO FIXTURE_SCHEMA.rooms VALUES ('roomFixture01', 'room', '2024-05-06 07:08:09.123456+00', '2024-05-06 07:08:10.123456+00', 3, 4, true, 'u', 'DENY', '{"x": "y"}');
INSERT INTO FIXTURE_SCHEMA.rooms VALUES ('roomFixture02', '', '2024-05-06 07:08:09.123456+00', '2024-05-06 07:08:09.123456+00', 10, 500, true, '', 'ALLOW', '{}');

INSERT INTO FIXTURE_SCHEMA.schema_migrations VALUES (1);

ALTER TABLE ONLY FIXTURE_SCHEMA.logging_configurations
    ADD CONSTRAINT logging_configurations_pkey PRIMARY KEY (id);

ALTER TABLE ONLY FIXTURE_SCHEMA.room_logging_configurations
    ADD CONSTRAINT room_logging_configurations_pkey PRIMARY KEY (room_id, "position");

ALTER TABLE ONLY FIXTURE_SCHEMA.rooms
    ADD CONSTRAINT rooms_pkey PRIMARY KEY (id);

ALTER TABLE ONLY FIXTURE_SCHEMA.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

CREATE INDEX logging_configurations_list ON FIXTURE_SCHEMA.logging_configurations USING btree (update_time DESC, id);

CREATE INDEX room_logging_configurations_lc ON FIXTURE_SCHEMA.room_logging_configurations USING btree (lc_id);

CREATE INDEX rooms_list ON FIXTURE_SCHEMA.rooms USING btree (update_time DESC, id);

ALTER TABLE ONLY FIXTURE_SCHEMA.room_logging_configurations
    ADD CONSTRAINT room_logging_configurations_lc_id_fkey FOREIGN KEY (lc_id) REFERENCES FIXTURE_SCHEMA.logging_configurations(id) ON DELETE RESTRICT;

ALTER TABLE ONLY FIXTURE_SCHEMA.room_logging_configurations
    ADD CONSTRAINT room_logging_configurations_room_id_fkey FOREIGN KEY (room_id) REFERENCES FIXTURE_SCHEMA.rooms(id) ON DELETE CASCADE;

