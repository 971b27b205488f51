// The live page: watch the top 10 over Socket.IO, mark what changed, post a demo score.
"use strict";

(function () {
  const TOKEN_KEY = "scoreboard.token";
  const SOCKET_PATH = "/ws/scoreboard";

  const byId = (id) => document.getElementById(id);
  const connection = byId("connection");
  const tokenInput = byId("token");
  const boardRows = byId("board-rows");
  const boardMeta = byId("board-meta");

  let socket = null;
  let shownVersion = -1;
  let shownRows = null; // userId -> {rank, score} of the board on screen; null before the first
  let demo = null; // {userId, username, token}, only in the single-process mode

  function showConnection(state, text) {
    connection.dataset.state = state;
    connection.textContent = text;
  }

  function stopWatching() {
    if (socket !== null) {
      socket.off();
      socket.disconnect();
      socket = null;
    }
    showConnection("idle", "Not connected");
  }

  function watch(token) {
    stopWatching();
    showConnection("connecting", "Connecting…");
    let connectedBefore = false;
    // forceNew: a new token gets a connection of its own, not the previous one's manager.
    const current = io({ path: SOCKET_PATH, auth: { token }, forceNew: true });
    socket = current;
    current.on("connect", () => {
      // Each connection opens with the server's current board, which counts even when its
      // version is lower than the one on screen: a restarted single-process server starts at 0.
      shownVersion = -1;
      showConnection("connected", connectedBefore ? "Reconnected" : "Connected");
      connectedBefore = true;
    });
    current.on("disconnect", (reason) => {
      showConnection("disconnected", "Connection lost, reconnecting…");
      // A socket the server closed on purpose is not retried by the client on its own.
      if (reason === "io server disconnect") current.connect();
    });
    current.on("connect_error", (error) => {
      if (current.active) {
        showConnection("disconnected", "Connection lost, reconnecting…");
      } else {
        showConnection("refused", `Refused: ${error.message}`);
      }
    });
    current.on("leaderboardUpdate", render);
  }

  function render(update) {
    if (!update || typeof update.version !== "number" || !Array.isArray(update.top10)) return;
    // With several workers a late, older board can arrive after a newer one: drop it.
    if (update.version <= shownVersion) return;
    shownVersion = update.version;
    const before = shownRows;
    shownRows = new Map();
    const rows = update.top10.map((entry, index) => {
      const rank = index + 1;
      shownRows.set(entry.userId, { rank, score: entry.score });
      const change = before === null ? null : changeOf(before.get(entry.userId), rank, entry.score);
      return boardRow(entry, rank, change);
    });
    boardRows.replaceChildren(...(rows.length > 0 ? rows : [emptyRow()]));
    boardMeta.dataset.version = String(update.version);
    boardMeta.textContent = `Version ${update.version}, received ${new Date().toLocaleTimeString()}`;
  }

  function changeOf(previous, rank, score) {
    if (previous === undefined) return { kind: "new", text: "new" };
    const parts = [];
    if (rank < previous.rank) parts.push(`▲ ${previous.rank - rank}`);
    if (rank > previous.rank) parts.push(`▼ ${rank - previous.rank}`);
    if (score !== previous.score) parts.push(`${score > previous.score ? "+" : ""}${score - previous.score}`);
    if (parts.length === 0) return null;
    return { kind: rank === previous.rank ? "score" : "rank", text: parts.join(" ") };
  }

  function boardRow(entry, rank, change) {
    const row = document.createElement("tr");
    row.dataset.userId = entry.userId;
    const player = cell("", "player");
    const name = document.createElement("span");
    name.className = "username";
    name.textContent = entry.username;
    const userId = document.createElement("span");
    userId.className = "user-id";
    userId.textContent = entry.userId;
    player.append(name, userId);
    row.append(
      cell(String(rank), "rank"),
      player,
      cell(String(entry.score), "score"),
      cell(change === null ? "" : change.text, "change"),
    );
    if (change !== null) {
      row.classList.add("changed");
      row.dataset.change = change.kind;
    }
    return row;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.className = className;
    td.textContent = text;
    return td;
  }

  function emptyRow() {
    const row = document.createElement("tr");
    row.className = "empty";
    const td = cell("Nobody has scored yet.", "");
    td.colSpan = 4;
    row.append(td);
    return row;
  }

  async function findDemo() {
    try {
      const response = await fetch("/api/demo");
      return response.ok ? await response.json() : null;
    } catch (error) {
      return null;
    }
  }

  async function postDemoScore(event) {
    event.preventDefault();
    const result = byId("score-result");
    result.textContent = "Posting…";
    let response;
    try {
      response = await fetch("/api/score/update", {
        method: "POST",
        headers: { Authorization: `Bearer ${demo.token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ userId: demo.userId, scoreIncrement: Number(byId("increment").value) }),
      });
    } catch (error) {
      result.textContent = "Not sent: the server cannot be reached.";
      return;
    }
    const body = await response.json().catch(() => ({}));
    result.textContent = response.ok
      ? `Queued: ${demo.username} now has ${body.newScore}.`
      : `Refused (${response.status}): ${body.message || response.statusText}`;
  }

  byId("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = tokenInput.value.trim();
    if (token === "") return;
    sessionStorage.setItem(TOKEN_KEY, token);
    watch(token);
  });
  byId("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    tokenInput.value = "";
    stopWatching();
  });
  byId("score-form").addEventListener("submit", postDemoScore);

  findDemo().then((found) => {
    demo = found;
    if (demo !== null) {
      byId("demo-username").textContent = demo.username;
      byId("score-form").hidden = false;
    }
    const token = sessionStorage.getItem(TOKEN_KEY) || (demo !== null ? demo.token : null);
    if (token) {
      tokenInput.value = token;
      watch(token);
    }
  });
})();
