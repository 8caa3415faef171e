-- Tokens carry the user's token version at issue; a password reset raises
-- it, so every access and refresh token issued before stops working at
-- once, whatever else is still in flight. Access tokens issued before this
-- column existed carry no version, which reads as 0.
ALTER TABLE users ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;
