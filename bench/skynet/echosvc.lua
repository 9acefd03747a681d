-- An echo service for load from outside: accept on 127.0.0.1:8002, echo whatever arrives.
local skynet = require "skynet"
local socket = require "skynet.socket"

local function echo(id)
	socket.start(id)
	while true do
		local d = socket.read(id)
		if not d then break end
		socket.write(id, d)
	end
	socket.close(id)
end

skynet.start(function()
	local id = socket.listen("127.0.0.1", 8002)
	socket.start(id, function(cid, addr)
		skynet.fork(echo, cid)
	end)
end)
