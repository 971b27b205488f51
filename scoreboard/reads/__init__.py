"""Reads: the board, a user's rank and history, as the store and the ledger hold them."""
