"""scoreboard: a real-time leaderboard service (REST writes, Socket.IO top 10)."""
