"""Push: the new top 10 to every Socket.IO client, coalesced, encoded once, in version order."""
