"""The web process: REST API and Socket.IO server in one aiohttp application."""
