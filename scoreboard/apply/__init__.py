"""Apply: the worker loop that puts queued updates on the board, once each, and in the ledger."""
