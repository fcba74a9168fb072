-- Access groups (owner: cards): named sets of zones with a schedule each,
-- granted on top of a card type's defaults (a gym, another building's
-- doors, every door for a member of staff).
CREATE TABLE access_groups (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, code)
);

CREATE TABLE access_group_rights (
    group_id BIGINT NOT NULL REFERENCES access_groups(id),
    zone TEXT NOT NULL,
    sched TEXT NOT NULL,
    PRIMARY KEY (group_id, zone)
);
