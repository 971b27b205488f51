-- Every applied score update, once: the durable record the Redis board is rebuilt from.
CREATE TABLE score_ledger (
    id              bigserial   PRIMARY KEY,
    message_id      text        NOT NULL UNIQUE,
    user_id         text        NOT NULL,
    username        text        NOT NULL,
    increment       bigint      NOT NULL CHECK (increment > 0),
    resulting_score bigint      NOT NULL,
    accepted_at     timestamptz NOT NULL,
    applied_at      timestamptz NOT NULL DEFAULT now()
);

-- A user's history, newest first.
CREATE INDEX score_ledger_user_newest ON score_ledger (user_id, id DESC);

-- Each user's running total, kept in the same transaction as the ledger rows: it serialises
-- writers per user and makes a rebuild read one row per user instead of the whole ledger.
CREATE TABLE user_scores (
    user_id       text   PRIMARY KEY,
    username      text   NOT NULL,
    total         bigint NOT NULL,
    last_entry_id bigint NOT NULL
);
