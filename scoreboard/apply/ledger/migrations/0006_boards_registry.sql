-- Boards kept beside the ledger, so that Redis can lose them: the deployment's boards with their
-- settings (the source of truth; Redis keeps the copy every node reads), and when each season of
-- each board started and ended (written when a board is created and when a season moves on).
CREATE TABLE boards (
    board_id      text    PRIMARY KEY,
    name          text    NOT NULL,
    operator      text    NOT NULL,
    ranking       text    NOT NULL,  -- the board's order: "order" is a reserved word
    reset         text    NOT NULL,
    authoritative boolean NOT NULL
);

-- ended_at NULL: the season is live. A season is in this table once it has been live here;
-- seasons of boards made before this migration are known from board_scores and closed_seasons.
CREATE TABLE board_seasons (
    board_id   text        NOT NULL,
    season     integer     NOT NULL,
    started_at timestamptz,
    ended_at   timestamptz,
    PRIMARY KEY (board_id, season)
);

-- A removal now names its board: NULL for every board; what came before was global's.
ALTER TABLE admin_actions ADD COLUMN board_id text;
UPDATE admin_actions SET board_id = 'global';
