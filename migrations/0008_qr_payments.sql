-- QR payments through an online gateway (owner: billing): the gateway's
-- transaction and what the QR code shows.
ALTER TABLE payments ADD COLUMN provider_txn TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN qr_content TEXT NOT NULL DEFAULT '';
