-- The books (owner: billing). Money is integer fen; periods are 'YYYY-MM';
-- business days are the site's local dates 'YYYY-MM-DD'. Nothing is
-- deleted: voids, refunds and adjustments are states and new rows.

-- What the estate charges. kind: per_area (price per m² per month, the
-- unit's area), monthly (a fixed amount per unit per month), metered (an
-- amount entered per bill: water, electricity), one_off (card fee,
-- deposit, other: charged when it arises).
CREATE TABLE fee_items (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('per_area', 'monthly', 'metered', 'one_off')),
    price_fen BIGINT NOT NULL CHECK (price_fen >= 0),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, code)
);

-- Which units a monthly item applies to besides everyone (parking spaces
-- rented): when a monthly item has any rows here, only these units pay it.
CREATE TABLE fee_subscriptions (
    fee_item_id BIGINT NOT NULL REFERENCES fee_items(id),
    unit_id BIGINT NOT NULL REFERENCES units(id),
    since_period TEXT NOT NULL,
    until_period TEXT,
    PRIMARY KEY (fee_item_id, unit_id)
);

-- A bill: one fee item, one unit, one period (one_off bills have a unique
-- reference in period, e.g. 'card-1234'). paid_fen only grows through
-- payment allocations and shrinks through voids and refunds.
CREATE TABLE bills (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    unit_id BIGINT NOT NULL REFERENCES units(id),
    fee_item_id BIGINT NOT NULL REFERENCES fee_items(id),
    period TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    paid_fen BIGINT NOT NULL DEFAULT 0 CHECK (paid_fen >= 0 AND paid_fen <= amount_fen),
    due_on TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'paid', 'cancelled')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (unit_id, fee_item_id, period)
);
CREATE INDEX bills_site_state ON bills (site_id, state, due_on);

-- One row per payment attempt, taken by an operator: a staff member, a
-- kiosk, or an API token (an integration). state: created → sent → approved |
-- declined | unknown → settled; cash and transfers go created → settled.
-- idem_key makes a retried request the same attempt.
CREATE TABLE payments (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    unit_id BIGINT NOT NULL REFERENCES units(id),
    idem_key TEXT NOT NULL,
    ref TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('cash', 'card', 'transfer', 'qr')),
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    tendered_fen BIGINT NOT NULL DEFAULT 0,
    change_fen BIGINT NOT NULL DEFAULT 0,
    bill_ids TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('created', 'sent', 'approved', 'declined', 'unknown', 'settled', 'failed')),
    outcome TEXT NOT NULL DEFAULT '',
    auth_code TEXT NOT NULL DEFAULT '',
    card_last4 TEXT NOT NULL DEFAULT '',
    transfer_ref TEXT NOT NULL DEFAULT '',
    operator_kind TEXT NOT NULL CHECK (operator_kind IN ('staff', 'kiosk', 'token')),
    operator_id BIGINT NOT NULL,
    operator_name TEXT NOT NULL,
    business_day TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, idem_key),
    UNIQUE (site_id, ref)
);
CREATE INDEX payments_state ON payments (site_id, state);
CREATE INDEX payments_day ON payments (site_id, business_day);

-- How a settled payment was spread over bills.
CREATE TABLE payment_allocations (
    payment_id BIGINT NOT NULL REFERENCES payments(id),
    bill_id BIGINT NOT NULL REFERENCES bills(id),
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    PRIMARY KEY (payment_id, bill_id)
);

-- Receipt numbers: the last number taken per site and year. Taken with an
-- UPDATE in the transaction that settles the payment, so a rolled-back
-- settlement gives its number back and numbers have no gaps.
CREATE TABLE receipt_counters (
    site_id BIGINT NOT NULL REFERENCES sites(id),
    year INTEGER NOT NULL,
    last_no BIGINT NOT NULL,
    PRIMARY KEY (site_id, year)
);

CREATE TABLE receipts (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    year INTEGER NOT NULL,
    number BIGINT NOT NULL,
    payment_id BIGINT NOT NULL UNIQUE REFERENCES payments(id),
    state TEXT NOT NULL DEFAULT 'issued' CHECK (state IN ('issued', 'voided')),
    prints INTEGER NOT NULL DEFAULT 0,
    void_reason TEXT NOT NULL DEFAULT '',
    voided_by BIGINT REFERENCES staff(id),
    void_approved_by BIGINT REFERENCES staff(id),
    voided_at TIMESTAMP,
    void_day TEXT,
    issued_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, year, number)
);

-- A refund of (part of) a receipt: approved by a supervisor, recorded on the
-- day it is paid out, referring to the original receipt.
CREATE TABLE refunds (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    receipt_id BIGINT NOT NULL REFERENCES receipts(id),
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    method TEXT NOT NULL CHECK (method IN ('cash', 'card', 'transfer')),
    reason TEXT NOT NULL,
    requested_by BIGINT NOT NULL REFERENCES staff(id),
    approved_by BIGINT NOT NULL REFERENCES staff(id),
    operator_kind TEXT NOT NULL DEFAULT 'staff',
    operator_id BIGINT NOT NULL,
    business_day TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX refunds_receipt ON refunds (receipt_id);

-- Print jobs (outbox): queued in the transaction that makes the receipt,
-- printed once by the printer worker; a job interrupted mid-print is not
-- repeated by itself (it may have printed) but marked failed for the desk
-- to retry.
CREATE TABLE print_jobs (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    printer TEXT NOT NULL,
    kind TEXT NOT NULL,
    receipt_id BIGINT REFERENCES receipts(id),
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'printing', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX print_jobs_state ON print_jobs (state, id);

-- Daily close per operator (a cashier or a kiosk) and business day: once
-- closed, the day takes no more payments, voids or refunds of that
-- operator; corrections land on a later day.
CREATE TABLE day_closes (
    id {{pk}},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    business_day TEXT NOT NULL,
    operator_kind TEXT NOT NULL,
    operator_id BIGINT NOT NULL,
    operator_name TEXT NOT NULL,
    totals TEXT NOT NULL,
    cash_expected_fen BIGINT NOT NULL,
    cash_counted_fen BIGINT NOT NULL,
    difference_fen BIGINT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    closed_by BIGINT NOT NULL REFERENCES staff(id),
    closed_at TIMESTAMP NOT NULL,
    UNIQUE (site_id, business_day, operator_kind, operator_id)
);

-- Billing settings per site (one row): late charge per day in
-- hundred-thousandths of the overdue amount (0: off, the default).
CREATE TABLE billing_settings (
    site_id BIGINT PRIMARY KEY REFERENCES sites(id),
    late_rate_per_day_e5 INTEGER NOT NULL DEFAULT 0 CHECK (late_rate_per_day_e5 >= 0),
    due_days INTEGER NOT NULL DEFAULT 15 CHECK (due_days >= 0),
    updated_at TIMESTAMP NOT NULL
);
