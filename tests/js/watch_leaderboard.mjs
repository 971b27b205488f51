// Watch the scoreboard with the real Socket.IO JavaScript client.
//
//   node watch_leaderboard.mjs URL TOKEN USER_ID [--transports websocket] [--timeout-ms 10000]
//                              [--boards weekly,global] [--subscribe daily]
//
// URL, TOKEN and USER_ID may also come from SCOREBOARD_URL, SCOREBOARD_TOKEN and
// SCOREBOARD_USER_ID; --transports from SCOREBOARD_TRANSPORTS (comma-separated) and
// --timeout-ms from SCOREBOARD_TIMEOUT_MS.
// --boards: the boards chosen on connect (auth.boards); --subscribe: boards subscribed to once
// connected, with the acknowledgement printed to stderr as "ack subscribe {…}".
// stdout: every leaderboardUpdate received, one JSON line each.
// stderr: connection diagnostics ("open transport=…", "upgraded transport=…", "connected …").
// Exit codes: 0 once an update's top10 contains USER_ID, 1 on connect_error,
// 2 on timeout, 3 on an unexpected disconnect, 64 on bad usage.
import { parseArgs } from "node:util";
import { io } from "socket.io-client";

const EXIT = { found: 0, connectError: 1, timeout: 2, disconnected: 3, usage: 64 };

function readOptions() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      transports: { type: "string" },
      "timeout-ms": { type: "string" },
      boards: { type: "string" },
      subscribe: { type: "string" },
    },
  });
  const env = process.env;
  const [url = env.SCOREBOARD_URL, token = env.SCOREBOARD_TOKEN, userId = env.SCOREBOARD_USER_ID] =
    positionals;
  const transports = values.transports ?? env.SCOREBOARD_TRANSPORTS;
  const timeoutMs = Number(values["timeout-ms"] ?? env.SCOREBOARD_TIMEOUT_MS ?? 10000);
  if (!url || !token || !userId || !Number.isFinite(timeoutMs)) {
    console.error("usage: node watch_leaderboard.mjs URL TOKEN USER_ID [--transports websocket] [--timeout-ms N]");
    process.exit(EXIT.usage);
  }
  return {
    url,
    token,
    userId,
    timeoutMs,
    transports: transports ? transports.split(",") : ["polling", "websocket"],
    boards: values.boards?.split(","),
    subscribe: values.subscribe?.split(","),
  };
}

function watch({ url, token, userId, timeoutMs, transports, boards, subscribe }) {
  const auth = boards ? { token, boards } : { token };
  const socket = io(url, { path: "/ws/scoreboard", auth, transports, reconnection: false });
  let finished = false;
  const finish = (code, message) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (message) console.error(message);
    socket.disconnect();
    process.exit(code);
  };
  const timer = setTimeout(
    () => finish(EXIT.timeout, `timeout: no update with ${userId} after ${timeoutMs} ms`),
    timeoutMs,
  );
  const transport = () => socket.io.engine.transport.name;

  socket.io.on("open", () => {
    console.error(`open transport=${transport()}`);
    socket.io.engine.on("upgrade", () => console.error(`upgraded transport=${transport()}`));
  });
  socket.on("connect", async () => {
    console.error(`connected transport=${transport()}`);
    if (subscribe) {
      const ack = await socket.emitWithAck("subscribe", { boards: subscribe });
      console.error(`ack subscribe ${JSON.stringify(ack)}`);
    }
  });
  socket.on("connect_error", (error) => finish(EXIT.connectError, `connect_error: ${error.message}`));
  socket.on("disconnect", (reason) => finish(EXIT.disconnected, `disconnected: ${reason}`));
  socket.on("leaderboardUpdate", (update) => {
    console.log(JSON.stringify(update));
    if (update.top10.some((entry) => entry.userId === userId)) {
      finish(EXIT.found, `found ${userId} transport=${transport()}`);
    }
  });
}

watch(readOptions());
