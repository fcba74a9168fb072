-- The estate directory (owner: estate).
CREATE TABLE sites (
    id {{pk}},
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE buildings (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    number INTEGER NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (site_id, number)
);

CREATE TABLE entrances (
    id {{pk}},
    building_id BIGINT NOT NULL REFERENCES buildings(id),
    number INTEGER NOT NULL,
    UNIQUE (building_id, number)
);

-- code is building-entrance-room, e.g. 3-2-1801; area in 0.01 m².
CREATE TABLE units (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    entrance_id BIGINT NOT NULL REFERENCES entrances(id),
    code TEXT NOT NULL,
    floor INTEGER NOT NULL,
    room TEXT NOT NULL,
    area_centi_m2 INTEGER NOT NULL DEFAULT 0 CHECK (area_centi_m2 >= 0),
    handover_date TEXT,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, code)
);
CREATE INDEX units_entrance ON units (entrance_id);

-- Only the ID type and its last four characters are kept (PIPL: least data).
CREATE TABLE people (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    id_type TEXT NOT NULL CHECK (id_type IN ('resident_id', 'passport', 'hk_macau_permit', 'taiwan_permit', 'foreign_residence', 'other')),
    id_last4 TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX people_phone ON people (site_id, phone);
CREATE INDEX people_name ON people (site_id, name);

-- An occupancy ties a person to a unit from move-in to move-out. Rows are
-- never deleted: move-out fills moved_out_on.
CREATE TABLE occupancies (
    id {{pk}},
    unit_id BIGINT NOT NULL REFERENCES units(id),
    person_id BIGINT NOT NULL REFERENCES people(id),
    role TEXT NOT NULL CHECK (role IN ('owner', 'family', 'tenant')),
    moved_in_on TEXT NOT NULL,
    moved_out_on TEXT,
    confirmed_by BIGINT REFERENCES people(id),
    lease_start TEXT,
    lease_end TEXT,
    consent_method TEXT CHECK (consent_method IS NULL OR consent_method IN ('written', 'in_person', 'phone')),
    consent_note TEXT NOT NULL DEFAULT '',
    consent_recorded_by BIGINT REFERENCES staff(id),
    consent_recorded_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (role <> 'tenant' OR (lease_start IS NOT NULL AND lease_end IS NOT NULL AND lease_end > lease_start AND consent_method IS NOT NULL)),
    CHECK (role <> 'family' OR confirmed_by IS NOT NULL)
);
CREATE INDEX occupancies_unit ON occupancies (unit_id);
CREATE INDEX occupancies_person ON occupancies (person_id);
-- One current occupancy per person and unit.
CREATE UNIQUE INDEX occupancies_current ON occupancies (unit_id, person_id) WHERE moved_out_on IS NULL;
