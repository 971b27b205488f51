-- Closed seasons: each board's final standings at the end of a season, every entry with its rank.
-- One row per (board, season): the season closer inserts it once however many workers race.
CREATE TABLE closed_seasons (
    board_id   text        NOT NULL,
    season     integer     NOT NULL,
    started_at timestamptz,
    ended_at   timestamptz NOT NULL,
    entries    integer     NOT NULL,
    version    bigint      NOT NULL,
    PRIMARY KEY (board_id, season)
);

CREATE TABLE closed_season_entries (
    board_id text    NOT NULL,
    season   integer NOT NULL,
    rank     integer NOT NULL,
    user_id  text    NOT NULL,
    username text    NOT NULL,
    score    bigint  NOT NULL,
    PRIMARY KEY (board_id, season, rank),
    FOREIGN KEY (board_id, season) REFERENCES closed_seasons ON DELETE CASCADE
);
