-- The reader fleet (owner: fleet): devices, zones with their numbered
-- whitelist changes and current entries, acknowledgements, access events
-- and the outbox of messages to publish.
CREATE TABLE zones (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    seq BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, code)
);

CREATE TABLE devices (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    code TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('reader', 'turnstile', 'lift', 'kiosk-reader', 'gate-terminal')),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    online BOOLEAN NOT NULL DEFAULT FALSE,
    session BIGINT NOT NULL DEFAULT 0,
    firmware TEXT NOT NULL DEFAULT '',
    clock_ok BOOLEAN NOT NULL DEFAULT TRUE,
    last_seen_at TIMESTAMP,
    events_acked BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE device_zones (
    device_id BIGINT NOT NULL REFERENCES devices(id),
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    acked BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, zone_id)
);

CREATE TABLE wl_changes (
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    seq BIGINT NOT NULL,
    ops TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (zone_id, seq)
);

CREATE TABLE wl_entries (
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    card TEXT NOT NULL,
    entry TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (zone_id, card)
);

CREATE TABLE access_events (
    id {{pk}},
    device_id BIGINT NOT NULL REFERENCES devices(id),
    seq BIGINT NOT NULL,
    at TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL,
    clock_ok BOOLEAN NOT NULL,
    kind TEXT NOT NULL,
    card TEXT NOT NULL DEFAULT '',
    zone TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '',
    UNIQUE (device_id, seq)
);
CREATE INDEX access_events_at ON access_events (at);
CREATE INDEX access_events_card ON access_events (card);

CREATE TABLE outbox (
    id {{pk}},
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    retained BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
