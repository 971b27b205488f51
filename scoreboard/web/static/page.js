// The live page: watch one board's top 10 over Socket.IO, mark what changed, post a demo score,
// read the board's closed seasons. The connection, the version rule and posting are the
// project's JavaScript client (clients/js, served as scoreboard-client.js).
import {
  GLOBAL_BOARD as GLOBAL,
  ScoreboardError,
  connect,
  postScore,
} from "./scoreboard-client.js";

const TOKEN_KEY = "scoreboard.token";

const byId = (id) => document.getElementById(id);
const connection = byId("connection");
const tokenInput = byId("token");
const boardRows = byId("board-rows");
const boardMeta = byId("board-meta");
const picker = byId("board-picker");

let client = null;
let token = null;
let boards = new Map(); // boardId -> the board as GET /api/boards describes it
let selected = GLOBAL;
let changing = Promise.resolve(); // board changes run one after another, each awaiting its acks
let shownSeason = -1;
let shownRows = null; // userId -> {rank, score} of the board on screen; null before the first
let demo = null; // {userId, username, token}, only in the single-process mode

function showConnection(state, text) {
  connection.dataset.state = state;
  connection.textContent = text;
}

function stopWatching() {
  if (client !== null) {
    client.close();
    client = null;
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
  // A reconnection asks for the boards held by then (the client keeps them).
  const current = connect({
    token: newToken,
    boards: [selected],
    socketOptions: { forceNew: true },
  });
  client = current;
  current.socket.on("connect", () => {
    // Each connection opens with the server's current board: start over with it.
    shownSeason = -1;
    showConnection("connected", connectedBefore ? "Reconnected" : "Connected");
    connectedBefore = true;
    loadBoards(current);
  });
  current.socket.on("disconnect", () => {
    showConnection("disconnected", "Connection lost, reconnecting…");
  });
  current.socket.on("connect_error", (error) => {
    if (current.socket.active) {
      showConnection("disconnected", "Connection lost, reconnecting…");
    } else {
      showConnection("refused", `Refused: ${error.message}`);
    }
  });
  // The client hands on only a board's newer pushes (a later season, or a greater version).
  current.onLeaderboardUpdate(render);
}

function render(update) {
  if (!update || typeof update.version !== "number" || !Array.isArray(update.top10)) return;
  // A frame without boardId is global's; a board left a moment ago may still send one.
  if ((update.boardId ?? GLOBAL) !== selected) return;
  const season = typeof update.season === "number" ? update.season : 1;
  const newSeason = shownSeason !== -1 && season > shownSeason;
  shownSeason = season;
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
  if (current !== client || !Array.isArray(body.boards)) return;
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

async function ask(change) {
  try {
    return await change();
  } catch (error) {
    return { status: "error", message: "no answer from the server" };
  }
}

function changeBoard(previous, next) {
  const current = client;
  changing = changing.then(async () => {
    if (current === null || current !== client) return;
    if (previous !== next) await ask(() => current.unsubscribe([previous]));
    const ack = await ask(() => current.subscribe([next]));
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
  if (client === null) return;
  if (client.socket.connected) changeBoard(previous, next);
  // Reconnecting: connect again at once, asking for the board now selected.
  else watch(token);
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
  try {
    // The demo player's own token, whatever token watches the board.
    const answer = await postScore({ token: demo.token, userId: demo.userId, score: points, board: selected });
    result.textContent = `Queued: ${demo.username} now has ${answer.newScore}.`;
  } catch (error) {
    result.textContent =
      error instanceof ScoreboardError
        ? `Refused (${error.status}): ${error.message}`
        : "Not sent: the server cannot be reached.";
  }
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
