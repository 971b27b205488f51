-- The answering server's run id (server_id.lua).
return server_id()
