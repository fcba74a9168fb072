-- The one-card register (owner: cards). Nothing is deleted: a card moves
-- through states, and every step is a row in card_events (the issue
-- register and the exceptions register of SOP §1).

-- Card policy per site (one row).
CREATE TABLE card_policy (
    site_id BIGINT PRIMARY KEY REFERENCES sites(id),
    free_per_household INTEGER NOT NULL DEFAULT 3 CHECK (free_per_household >= 0),
    max_per_household INTEGER NOT NULL DEFAULT 10 CHECK (max_per_household >= 1),
    fee_fen BIGINT NOT NULL DEFAULT 2000 CHECK (fee_fen >= 0),
    deposit_on BOOLEAN NOT NULL DEFAULT FALSE,
    deposit_fen BIGINT NOT NULL DEFAULT 5000 CHECK (deposit_fen >= 0),
    owner_months INTEGER NOT NULL DEFAULT 24 CHECK (owner_months BETWEEN 1 AND 120),
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE card_counters (
    site_id BIGINT PRIMARY KEY REFERENCES sites(id),
    last_no BIGINT NOT NULL
);

-- state: applied (waiting for the encoder) → active ⇄ blocked (lost) →
-- replaced | returned | cancelled | damaged. type: owner, family, tenant,
-- staff, temporary (contractors). unit_id is null for staff cards.
CREATE TABLE cards (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    number BIGINT NOT NULL,
    uid TEXT,
    person_id BIGINT NOT NULL REFERENCES people(id),
    unit_id BIGINT REFERENCES units(id),
    type TEXT NOT NULL CHECK (type IN ('owner', 'family', 'tenant', 'staff', 'temporary')),
    state TEXT NOT NULL CHECK (state IN ('applied', 'active', 'blocked', 'replaced', 'returned', 'cancelled', 'damaged')),
    valid_from TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    replaces BIGINT REFERENCES cards(id),
    fee_bill_id BIGINT REFERENCES bills(id),
    deposit_bill_id BIGINT REFERENCES bills(id),
    note TEXT NOT NULL DEFAULT '',
    issued_by BIGINT REFERENCES staff(id),
    issued_at TIMESTAMP,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, number)
);
CREATE INDEX cards_unit ON cards (unit_id);
CREATE INDEX cards_person ON cards (person_id);
-- A card's UID belongs to one card that is in use (a wiped, returned card
-- can be issued again).
CREATE UNIQUE INDEX cards_uid_in_use ON cards (site_id, uid) WHERE uid IS NOT NULL AND state IN ('active', 'blocked');

-- What a card opens: zones with a schedule.
CREATE TABLE card_rights (
    card_id BIGINT NOT NULL REFERENCES cards(id),
    zone TEXT NOT NULL,
    sched TEXT NOT NULL,
    PRIMARY KEY (card_id, zone)
);

-- The register: every step of every card, who did it and why.
CREATE TABLE card_events (
    id {{pk}},
    card_id BIGINT NOT NULL REFERENCES cards(id),
    action TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    staff_id BIGINT REFERENCES staff(id),
    staff_name TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX card_events_card ON card_events (card_id);
CREATE INDEX card_events_at ON card_events (at);
