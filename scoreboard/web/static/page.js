// The live page: watch one board's top 10 over Socket.IO, mark what changed, post a demo score,
// read the board's closed seasons.
"use strict";

(function () {
  const TOKEN_KEY = "scoreboard.token";
  const SOCKET_PATH = "/ws/scoreboard";
  const GLOBAL = "global"; // its frames carry no boardId, its scores keep the first endpoint

  const byId = (id) => document.getElementById(id);
  const connection = byId("connection");
  const tokenInput = byId("token");
  const boardRows = byId("board-rows");
  const boardMeta = byId("board-meta");
  const picker = byId("board-picker");

  let socket = null;
  let token = null;
  let boards = new Map(); // boardId -> the board as GET /api/boards describes it
  let selected = GLOBAL;
  let changing = Promise.resolve(); // board changes run one after another, each awaiting its acks
  let shownSeason = -1;
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
    token = null;
    showConnection("idle", "Not connected");
  }

  function watch(newToken) {
    stopWatching();
    token = newToken;
    showConnection("connecting", "Connecting…");
    let connectedBefore = false;
    // forceNew: a new token gets a connection of its own, not the previous one's manager.
    // auth as a function: a reconnection asks for the board selected by then.
    const current = io({
      path: SOCKET_PATH,
      auth: (send) => send({ token: newToken, boards: [selected] }),
      forceNew: true,
    });
    socket = current;
    current.on("connect", () => {
      // Each connection opens with the server's current board, which counts even when its
      // version is lower than the one on screen: a restarted single-process server starts at 0.
      shownSeason = -1;
      shownVersion = -1;
      showConnection("connected", connectedBefore ? "Reconnected" : "Connected");
      connectedBefore = true;
      loadBoards(current);
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
    // A frame without boardId is global's; a board left a moment ago may still send one.
    if ((update.boardId ?? GLOBAL) !== selected) return;
    const season = typeof update.season === "number" ? update.season : 1;
    // With several workers a late, older board can arrive after a newer one: drop it.
    // A new season replaces the board whatever its version.
    if (season < shownSeason || (season === shownSeason && update.version <= shownVersion)) return;
    const newSeason = shownSeason !== -1 && season > shownSeason;
    shownSeason = season;
    shownVersion = update.version;
    const before = newSeason ? null : shownRows;
    if (newSeason) {
      const board = boards.get(selected);
      if (board !== undefined) board.season = season;
      showTitle();
      loadSeasons(); // the season before this one has just closed
    }
    shownRows = new Map();
    const rows = update.top10.map((entry, index) => {
      const rank = index + 1;
      shownRows.set(entry.userId, { rank, score: entry.score });
      const change = before === null ? null : changeOf(before.get(entry.userId), rank, entry.score);
      return boardRow(entry, rank, change);
    });
    boardRows.replaceChildren(...(rows.length > 0 ? rows : [emptyRow()]));
    boardMeta.dataset.version = String(update.version);
    boardMeta.dataset.season = String(season);
    boardMeta.textContent = `Version ${update.version}, received ${new Date().toLocaleTimeString()}`;
  }

  function clearBoard() {
    shownSeason = -1;
    shownVersion = -1;
    shownRows = null;
    boardRows.replaceChildren();
    delete boardMeta.dataset.version;
    delete boardMeta.dataset.season;
    boardMeta.textContent = "No board received yet.";
  }

  function authorized() {
    return { headers: { Authorization: `Bearer ${token}` } };
  }

  async function getJson(path) {
    const response = await fetch(path, authorized());
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.message || `${response.status} ${response.statusText}`);
    return body;
  }

  async function loadBoards(current) {
    let body;
    try {
      body = await getJson("/api/boards");
    } catch (error) {
      return; // the picker keeps what it had; the next connection asks again
    }
    if (current !== socket || !Array.isArray(body.boards)) return;
    boards = new Map(body.boards.map((board) => [board.boardId, board]));
    picker.replaceChildren(
      ...body.boards.map((board) => {
        const option = document.createElement("option");
        option.value = board.boardId;
        option.textContent = board.boardId === board.name ? board.name : `${board.name} (${board.boardId})`;
        return option;
      }),
    );
    // A board removed meanwhile: back to global, which always exists.
    if (!boards.has(selected)) selectBoard(GLOBAL);
    picker.value = selected;
    picker.disabled = false;
    showTitle();
    loadSeasons();
  }

  function showTitle() {
    const board = boards.get(selected);
    const title = byId("board-title");
    title.dataset.boardId = selected;
    title.textContent = board === undefined ? "" : `· ${board.name}, season ${board.season}`;
  }

  function ask(current, event, chosen) {
    return new Promise((resolve) => {
      current.timeout(10_000).emit(event, { boards: chosen }, (error, ack) => {
        if (error) resolve({ status: "error", message: "no answer from the server" });
        else resolve(ack || { status: "error", message: "empty answer" });
      });
    });
  }

  function changeBoard(previous, next) {
    const current = socket;
    changing = changing.then(async () => {
      if (current === null || current !== socket) return;
      if (previous !== next) await ask(current, "unsubscribe", [previous]);
      const ack = await ask(current, "subscribe", [next]);
      if (ack.status !== "success" && selected === next) {
        boardMeta.textContent = `Cannot watch ${next}: ${ack.message}`;
      }
    });
  }

  function selectBoard(next) {
    if (next === selected) return;
    const previous = selected;
    selected = next;
    clearBoard();
    showTitle();
    loadSeasons();
    // Not connected: the next connection asks for the selected board on its own.
    if (socket !== null && socket.connected) changeBoard(previous, next);
  }

  function when(iso) {
    if (!iso) return "not recorded";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  }

  function boardPath(boardId) {
    return `/api/boards/${encodeURIComponent(boardId)}`;
  }

  // A season that has just closed is listed once a worker has archived it, a second or so later.
  const SEASON_RETRY_MS = 1000;
  const SEASON_RETRIES = 60;
  let seasonRetry = null;

  async function loadSeasons(retries = SEASON_RETRIES) {
    clearTimeout(seasonRetry);
    const boardId = selected;
    const section = byId("seasons");
    const list = byId("season-list");
    byId("season-board").hidden = true;
    if (boardId === GLOBAL || token === null) {
      // global never closes a season
      section.hidden = true;
      list.replaceChildren();
      return;
    }
    let body;
    try {
      body = await getJson(`${boardPath(boardId)}/seasons`);
    } catch (error) {
      body = { seasons: [], failed: error.message };
    }
    if (boardId !== selected) return;
    const seasons = Array.isArray(body.seasons) ? body.seasons : [];
    const board = boards.get(boardId);
    const live = Math.max(board === undefined ? 1 : board.season, shownSeason);
    const newest = seasons.length > 0 ? seasons[0].season : 0;
    if (live > 1 && newest < live - 1 && retries > 0) {
      seasonRetry = setTimeout(() => loadSeasons(retries - 1), SEASON_RETRY_MS);
    }
    list.replaceChildren(...seasons.map((season) => seasonItem(boardId, season)));
    const empty = byId("seasons-empty");
    empty.textContent = body.failed
      ? `Closed seasons cannot be read: ${body.failed}`
      : "No season of this board has closed yet.";
    empty.hidden = seasons.length > 0;
    section.hidden = false;
  }

  function seasonItem(boardId, season) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "season";
    button.dataset.season = String(season.season);
    const entries = `${season.entries} ${season.entries === 1 ? "entry" : "entries"}`;
    button.textContent = `Season ${season.season} (${when(season.startedAt)} – ${when(season.endedAt)}, ${entries})`;
    button.addEventListener("click", () => showSeason(boardId, season.season));
    item.append(button);
    return item;
  }

  async function showSeason(boardId, season) {
    const table = byId("season-board");
    const title = byId("season-title");
    const rows = byId("season-rows");
    let body;
    try {
      body = await getJson(`${boardPath(boardId)}/seasons/${season}/leaderboard?limit=10`);
    } catch (error) {
      body = { entries: [], failed: error.message };
    }
    if (boardId !== selected) return;
    const entries = Array.isArray(body.entries) ? body.entries : [];
    table.dataset.season = String(season);
    title.textContent = body.failed
      ? `Season ${season} cannot be read: ${body.failed}`
      : `Season ${season}: top ${entries.length} of ${body.total}`;
    rows.replaceChildren(
      ...entries.map((entry) => {
        const row = document.createElement("tr");
        row.dataset.userId = entry.userId;
        row.append(
          cell(String(entry.rank), "rank"),
          playerCell(entry),
          cell(String(entry.score), "score"),
        );
        return row;
      }),
    );
    table.hidden = false;
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
    row.append(
      cell(String(rank), "rank"),
      playerCell(entry),
      cell(String(entry.score), "score"),
      cell(change === null ? "" : change.text, "change"),
    );
    if (change !== null) {
      row.classList.add("changed");
      row.dataset.change = change.kind;
    }
    return row;
  }

  function playerCell(entry) {
    const player = cell("", "player");
    const name = document.createElement("span");
    name.className = "username";
    name.textContent = entry.username;
    const userId = document.createElement("span");
    userId.className = "user-id";
    userId.textContent = entry.userId;
    player.append(name, userId);
    return player;
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
    const points = Number(byId("increment").value);
    // global keeps SPEC.md's endpoint and body; every other board takes a score.
    const [path, body] =
      selected === GLOBAL
        ? ["/api/score/update", { userId: demo.userId, scoreIncrement: points }]
        : [`${boardPath(selected)}/scores`, { userId: demo.userId, score: points }];
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { Authorization: `Bearer ${demo.token}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (error) {
      result.textContent = "Not sent: the server cannot be reached.";
      return;
    }
    const answer = await response.json().catch(() => ({}));
    result.textContent = response.ok
      ? `Queued: ${demo.username} now has ${answer.newScore}.`
      : `Refused (${response.status}): ${answer.message || response.statusText}`;
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
  picker.addEventListener("change", () => selectBoard(picker.value));

  findDemo().then((found) => {
    demo = found;
    if (demo !== null) {
      byId("demo-username").textContent = demo.username;
      byId("score-form").hidden = false;
    }
    const saved = sessionStorage.getItem(TOKEN_KEY) || (demo !== null ? demo.token : null);
    if (saved) {
      tokenInput.value = saved;
      watch(saved);
    }
  });
})();
