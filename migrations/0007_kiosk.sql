-- Lobby kiosks and owners' PINs (owner: kiosk).

-- A kiosk is a browser in a lobby with its card reader, printer and
-- terminal. It is enrolled once with a one-time code and then carries a
-- device credential (a cookie; only its hash is kept).
CREATE TABLE kiosks (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    location TEXT NOT NULL DEFAULT '',
    reader TEXT NOT NULL DEFAULT '',
    printer TEXT NOT NULL DEFAULT '',
    terminal TEXT NOT NULL DEFAULT '',
    enroll_hash TEXT,
    enroll_expires_at TIMESTAMP,
    secret_hash TEXT,
    csrf TEXT NOT NULL DEFAULT '',
    enrolled_at TIMESTAMP,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, code)
);

-- A unit's kiosk PIN (set at the desk), stored hashed, with its lockout.
CREATE TABLE unit_pins (
    unit_id BIGINT PRIMARY KEY REFERENCES units(id),
    pin_hash TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP,
    set_by BIGINT REFERENCES staff(id),
    set_at TIMESTAMP NOT NULL
);
