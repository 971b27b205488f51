-- Workers may apply a user's updates out of order: each update on a board other than global
-- carries its acceptance order (reserve.lua), and the board keeps, per user, the order of the
-- update that reached the value (ties rank by it) and of the newest `set` applied (an older one
-- arriving later changes nothing). NULL on rows from before: they rank by last_entry_id.
ALTER TABLE board_scores
    ADD COLUMN reached_seq bigint,
    ADD COLUMN latest_seq  bigint;
ALTER TABLE score_ledger ADD COLUMN accepted_seq bigint;
