-- A payment taken at a kiosk is charged on that kiosk's terminal and its
-- receipt printed on that kiosk's printer; '' is the desk's. The terminal
-- is asked again by the same name when the outcome is unknown.
ALTER TABLE payments ADD COLUMN terminal TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN printer TEXT NOT NULL DEFAULT '';
