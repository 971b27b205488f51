-- Boards: the ledger records every board's updates; what it held before is global's season 1.
-- On a `best` or `set` board the posted value is the score itself, and 0 is a score.
ALTER TABLE score_ledger
    ADD COLUMN board_id text    NOT NULL DEFAULT 'global',
    ADD COLUMN season   integer NOT NULL DEFAULT 1,
    DROP CONSTRAINT score_ledger_increment_check,
    ADD CONSTRAINT score_ledger_increment_check CHECK (increment >= 0);

-- A user's history on one board, newest first.
CREATE INDEX score_ledger_user_board_newest ON score_ledger (user_id, board_id, id DESC);

-- Each user's value on every board's season but global's, which stays in user_scores untouched
-- (a worker of the previous version may still be recording there while this one starts).
-- NULL: no value yet. last_entry_id is the entry that set the value: an update that leaves it
-- unchanged keeps the user's place among equal values.
CREATE TABLE board_scores (
    board_id      text    NOT NULL,
    season        integer NOT NULL,
    user_id       text    NOT NULL,
    username      text    NOT NULL,
    score         bigint,
    last_entry_id bigint  NOT NULL,
    PRIMARY KEY (board_id, season, user_id)
);
