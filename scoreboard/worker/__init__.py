"""The worker: applies queued updates to the board and broadcasts the top 10."""
