-- A unit's account reads its payments (credit, receipts, pending card
-- payments): without an index that scan grows with the books' history.
CREATE INDEX payments_unit ON payments (unit_id, state);
