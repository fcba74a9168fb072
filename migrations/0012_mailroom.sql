-- Mail and parcels, the parcel-locker bank, pickups and notifications
-- (owner: mailroom; SOP §3). Nothing is deleted: items end collected or
-- returned, commands and notifications end done, sent or failed.

-- The site's mailroom settings (SOP §3 numbers marked configurable). Hold
-- periods are in days from the day an item was registered; none exceeds
-- 30. signature_types lists the item types signed for at the desk (never
-- released at the kiosk). code_salt is mixed into pickup-code hashes.
CREATE TABLE mail_settings (
    site_id BIGINT PRIMARY KEY REFERENCES sites(id),
    reminder_days INTEGER NOT NULL DEFAULT 3 CHECK (reminder_days BETWEEN 1 AND 30),
    hold_days INTEGER NOT NULL DEFAULT 7 CHECK (hold_days BETWEEN 1 AND 30),
    moved_out_hold_days INTEGER NOT NULL DEFAULT 14 CHECK (moved_out_hold_days BETWEEN 1 AND 30),
    consent_hold_days INTEGER NOT NULL DEFAULT 30 CHECK (consent_hold_days BETWEEN 1 AND 30),
    signature_types TEXT NOT NULL DEFAULT 'registered,parcel,express,remittance',
    door_open_alert_seconds INTEGER NOT NULL DEFAULT 120 CHECK (door_open_alert_seconds >= 10),
    code_attempts INTEGER NOT NULL DEFAULT 5 CHECK (code_attempts >= 1),
    code_lock_minutes INTEGER NOT NULL DEFAULT 15 CHECK (code_lock_minutes >= 1),
    signature_retention_days INTEGER NOT NULL DEFAULT 365 CHECK (signature_retention_days >= 30),
    code_salt TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- The locker bank's doors as configured at the desk: number (as labelled,
-- 1 to the bank's size), size, and a flag that keeps a door out of use
-- until staff clear it (did not open, board silent, left open, by hand).
CREATE TABLE mail_doors (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    number INTEGER NOT NULL CHECK (number >= 1),
    size TEXT NOT NULL CHECK (size IN ('S', 'M', 'L')),
    flagged BOOLEAN NOT NULL DEFAULT FALSE,
    flag_reason TEXT NOT NULL DEFAULT '',
    flag_note TEXT NOT NULL DEFAULT '',
    flagged_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, number)
);

-- Signatures taken at the desk: PNG bytes as base64 text (portable).
-- After the retention period the image is blanked (purged_at), the row
-- and its hash stay.
CREATE TABLE mail_signatures (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    png_base64 TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    purged_at TIMESTAMP
);
CREATE INDEX mail_signatures_created ON mail_signatures (site_id, created_at);

-- Per-site, per-day item numbers (20261120-001).
CREATE TABLE mail_counters (
    site_id BIGINT NOT NULL REFERENCES sites(id),
    day TEXT NOT NULL,
    last_number INTEGER NOT NULL,
    PRIMARY KEY (site_id, day)
);

-- An incoming item, from registration to collected or returned. A locker
-- item has a door once one is assigned (door_id) and is in it once the
-- door has closed on it (stored_at); it keeps door_id afterwards, for the
-- record. registered_on is the business day at the site.
CREATE TABLE mail_items (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    number TEXT NOT NULL,
    item_type TEXT NOT NULL CHECK (item_type IN ('letter', 'registered', 'parcel', 'express', 'remittance', 'newspaper')),
    carrier TEXT NOT NULL,
    tracking TEXT,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    recipient TEXT NOT NULL DEFAULT '',
    person_id BIGINT REFERENCES people(id),
    item_condition TEXT NOT NULL CHECK (item_condition IN ('ok', 'damaged')),
    damage_note TEXT NOT NULL DEFAULT '',
    countersigned BOOLEAN NOT NULL DEFAULT FALSE,
    storage TEXT NOT NULL CHECK (storage IN ('shelf', 'locker')),
    slot TEXT NOT NULL DEFAULT '',
    door_id BIGINT REFERENCES mail_doors(id),
    stored_at TIMESTAMP,
    needs_signature BOOLEAN NOT NULL,
    hold TEXT NOT NULL DEFAULT 'standard' CHECK (hold IN ('standard', 'moved_out', 'consent')),
    hold_note TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'collected', 'returned')),
    attention TEXT NOT NULL DEFAULT '',
    registered_on TEXT NOT NULL,
    registered_at TIMESTAMP NOT NULL,
    registered_by TEXT NOT NULL,
    collected_at TIMESTAMP,
    collector_kind TEXT CHECK (collector_kind IS NULL OR collector_kind IN ('recipient', 'household', 'agent', 'code')),
    collector_name TEXT NOT NULL DEFAULT '',
    agent_id_last4 TEXT NOT NULL DEFAULT '',
    signature_id BIGINT REFERENCES mail_signatures(id),
    collected_via TEXT NOT NULL DEFAULT '' CHECK (collected_via IN ('', 'desk', 'locker')),
    handed_by TEXT NOT NULL DEFAULT '',
    returned_at TIMESTAMP,
    return_note TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, number),
    CHECK (item_condition = 'ok' OR (damage_note <> '' AND countersigned)),
    CHECK (storage = 'locker' OR door_id IS NULL OR state <> 'waiting'),
    CHECK (state <> 'collected' OR collected_at IS NOT NULL),
    CHECK (state <> 'returned' OR returned_at IS NOT NULL)
);
-- A door holds at most one waiting item: two clerks placing at once can
-- never get the same door (the loser's insert fails and it picks again).
CREATE UNIQUE INDEX mail_items_door ON mail_items (door_id) WHERE door_id IS NOT NULL AND state = 'waiting';
-- A tracking number is waiting at most once.
CREATE UNIQUE INDEX mail_items_tracking_waiting ON mail_items (site_id, tracking) WHERE tracking IS NOT NULL AND state = 'waiting';
CREATE INDEX mail_items_tracking ON mail_items (tracking);
CREATE INDEX mail_items_unit ON mail_items (unit_id, state);
CREATE INDEX mail_items_state ON mail_items (site_id, state, registered_at);
CREATE INDEX mail_items_day ON mail_items (site_id, registered_on);

-- Locker commands (the outbox): an open of a door, written in the same
-- transaction as the change that needs it, delivered by the locker
-- worker once: queued, sent (committed before the board is told), open
-- (the sensor said open), done (closed again) or failed with a reason.
CREATE TABLE mail_locker_commands (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    door_id BIGINT NOT NULL REFERENCES mail_doors(id),
    item_id BIGINT REFERENCES mail_items(id),
    purpose TEXT NOT NULL CHECK (purpose IN ('store', 'pickup', 'service')),
    state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'open', 'done', 'failed')),
    reason TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    requested_by TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    opened_at TIMESTAMP,
    closed_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
-- One command in progress per door.
CREATE UNIQUE INDEX mail_locker_commands_active ON mail_locker_commands (door_id) WHERE state IN ('queued', 'sent', 'open');
CREATE INDEX mail_locker_commands_state ON mail_locker_commands (site_id, state, id);
CREATE INDEX mail_locker_commands_item ON mail_locker_commands (item_id);

-- Pickup codes of locker items: six digits, kept only as a salted hash,
-- used once.
CREATE TABLE mail_pickup_codes (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    item_id BIGINT NOT NULL REFERENCES mail_items(id),
    code_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'used', 'revoked')),
    created_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    used_by TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX mail_pickup_codes_active ON mail_pickup_codes (site_id, code_hash) WHERE state = 'active';
CREATE UNIQUE INDEX mail_pickup_codes_item ON mail_pickup_codes (item_id) WHERE state = 'active';
CREATE INDEX mail_pickup_codes_item_all ON mail_pickup_codes (item_id);

-- Wrong pickup codes per source (a kiosk), for the lockout.
CREATE TABLE mail_code_failures (
    site_id BIGINT NOT NULL REFERENCES sites(id),
    source TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (site_id, source)
);

-- Notifications to residents (the outbox): the text is composed when
-- delivered, from the item as it is then. secret holds a pickup code
-- until the message carrying it is sent, and is then erased.
-- reminder_day makes a reminder once per item and day.
CREATE TABLE mail_notifications (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    item_id BIGINT REFERENCES mail_items(id),
    unit_id BIGINT NOT NULL REFERENCES units(id),
    kind TEXT NOT NULL CHECK (kind IN ('arrival', 'reminder', 'code', 'returned')),
    urgent BOOLEAN NOT NULL,
    reminder_day TEXT,
    secret TEXT,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TIMESTAMP NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    sent_with BIGINT,
    sent_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (item_id, kind, reminder_day)
);
CREATE INDEX mail_notifications_due ON mail_notifications (site_id, state, next_at);
CREATE INDEX mail_notifications_item ON mail_notifications (item_id);

-- What happened to each item, for its history by tracking number.
CREATE TABLE mail_events (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    item_id BIGINT NOT NULL REFERENCES mail_items(id),
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX mail_events_item ON mail_events (item_id, id);

-- Outgoing mail handed in at the desk (SOP §3: unit, sender, addressee,
-- method).
CREATE TABLE mail_outgoing (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    unit_id BIGINT NOT NULL REFERENCES units(id),
    sender TEXT NOT NULL,
    addressee TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('letter', 'registered', 'parcel', 'express')),
    tracking TEXT,
    registered_on TEXT NOT NULL,
    registered_at TIMESTAMP NOT NULL,
    registered_by TEXT NOT NULL
);
CREATE INDEX mail_outgoing_day ON mail_outgoing (site_id, registered_on);
