-- Move-out gate passes (owner: passes). SOP §2.

-- Pass numbers per site and year (2026-000123), taken in the issuing
-- transaction.
CREATE TABLE pass_counters (
    site_id BIGINT NOT NULL REFERENCES sites(id),
    year INTEGER NOT NULL,
    last_no BIGINT NOT NULL,
    PRIMARY KEY (site_id, year)
);

-- A pass: who applied and on what authority, the goods, the window and the
-- gate, the signed code printed as a QR code, and what became of it.
CREATE TABLE passes (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    number TEXT NOT NULL,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    applicant_role TEXT NOT NULL CHECK (applicant_role IN ('owner', 'tenant', 'agent')),
    applicant_name TEXT NOT NULL,
    applicant_id_last4 TEXT NOT NULL DEFAULT '',
    consent TEXT NOT NULL DEFAULT '',
    consent_note TEXT NOT NULL DEFAULT '',
    items TEXT NOT NULL,
    plate TEXT NOT NULL DEFAULT '',
    gate TEXT NOT NULL,
    valid_from TIMESTAMP NOT NULL,
    valid_until TIMESTAMP NOT NULL,
    arrears_fen BIGINT NOT NULL DEFAULT 0,
    approved_by TEXT NOT NULL DEFAULT '',
    approval_reason TEXT NOT NULL DEFAULT '',
    code TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('issued', 'used', 'cancelled')),
    issued_by TEXT NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    released_at TIMESTAMP,
    released_gate TEXT NOT NULL DEFAULT '',
    released_by TEXT NOT NULL DEFAULT '',
    mover_id_last4 TEXT NOT NULL DEFAULT '',
    released_plate TEXT NOT NULL DEFAULT '',
    released_offline BOOLEAN NOT NULL DEFAULT FALSE,
    cancelled_at TIMESTAMP,
    cancel_reason TEXT NOT NULL DEFAULT '',
    followed_up_at TIMESTAMP,
    follow_up_note TEXT NOT NULL DEFAULT '',
    UNIQUE (site_id, number)
);
CREATE INDEX passes_issued ON passes (site_id, issued_at);

-- Every check at a gate (guard page or terminal), and what it said; and
-- every flag the server raised (a pass released twice, released while
-- cancelled).
CREATE TABLE pass_checks (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    pass_id BIGINT REFERENCES passes(id),
    gate TEXT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('scan', 'release', 'mismatch', 'flag')),
    ok BOOLEAN NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    at TIMESTAMP NOT NULL
);
CREATE INDEX pass_checks_pass ON pass_checks (pass_id);
CREATE INDEX pass_checks_at ON pass_checks (site_id, at);

-- The gate's duty log: goods refused without a pass, and the shift
-- leader's exceptions.
CREATE TABLE duty_log (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    gate TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('refusal', 'exception')),
    unit TEXT NOT NULL DEFAULT '',
    plate TEXT NOT NULL DEFAULT '',
    leader TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL,
    by_name TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX duty_log_at ON duty_log (site_id, at);
