-- What admins did to the board, for audit; a removal also restarts the users' totals at 0.
CREATE TABLE admin_actions (
    id       bigserial   PRIMARY KEY,
    action   text        NOT NULL CHECK (action IN ('remove', 'reset')),
    user_ids text[],     -- NULL for a reset of the whole board
    admin    text        NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
