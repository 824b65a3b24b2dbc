// PeerJS server 1.0.2 for bench/run.sh: the comparison target of mpc-bench.
// Listens on 127.0.0.1 (PORT env, default 0 = a free port) and prints
// "listening on 127.0.0.1:<port>" as its first stdout line, like mpc-signal.
// Clients connect to ws://127.0.0.1:<port>/peerjs?key=peerjs&id=ID&token=TOKEN.
"use strict";
const { PeerServer } = require("peer");

const port = Number(process.env.PORT || 0);
PeerServer(
	{
		host: "127.0.0.1",
		port,
		path: "/",
		key: "peerjs",
		// The default (5000) is below the 10k-connection scenario.
		concurrent_limit: 30000,
		// GET /peerjs/peers lists ids, the closest thing to list_peers.
		allow_discovery: true,
	},
	(server) => {
		const addr = server.address();
		process.stdout.write(`listening on 127.0.0.1:${addr.port}\n`);
	},
);
