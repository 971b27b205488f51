// A client of the scoreboard service: the live top 10 of chosen boards over Socket.IO, and
// posting scores safely (Idempotency-Key, Retry-After). Types and documentation: index.d.ts.
// The live page loads this very file (scoreboard/web/static/scoreboard-client.js is a copy).
import { io } from "socket.io-client";

export const SOCKET_PATH = "/ws/scoreboard";
export const GLOBAL_BOARD = "global";
export const LEADERBOARD_EVENT = "leaderboardUpdate";
const RETRIED_STATUSES = new Set([429, 503]);

/** A refused request: the HTTP status and the message of the service's error body. */
export class ScoreboardError extends Error {
  constructor(status, message, retryAfterSeconds = null) {
    super(message);
    this.name = "ScoreboardError";
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The newest (season, version) seen of each board: what is older, or the same, is stale. */
export class BoardVersions {
  #seen = new Map();

  accept(update) {
    const boardId = update.boardId ?? GLOBAL_BOARD;
    const season = update.season ?? 1;
    const seen = this.#seen.get(boardId);
    if (seen !== undefined) {
      if (season < seen.season) return false;
      if (season === seen.season && update.version <= seen.version) return false;
    }
    this.#seen.set(boardId, { season, version: update.version });
    return true;
  }

  forget(boardId) {
    this.#seen.delete(boardId);
  }

  clear() {
    this.#seen.clear();
  }
}

export function connect({
  url,
  token,
  boards,
  socketOptions = {},
  ackTimeoutMs = 10_000,
  retries,
  fetch,
}) {
  return new ScoreboardClient({
    url,
    token,
    boards,
    socketOptions,
    ackTimeoutMs,
    posting: { retries, fetch },
  });
}

class ScoreboardClient {
  #url;
  #token;
  #posting;
  #ackTimeoutMs;
  #held;
  #versions = new BoardVersions();
  #handlers = new Set();

  constructor({ url, token, boards, socketOptions, ackTimeoutMs, posting }) {
    this.#url = url;
    this.#token = token;
    this.#posting = posting;
    this.#ackTimeoutMs = ackTimeoutMs;
    this.#held = [...(boards ?? [GLOBAL_BOARD])];
    // auth as a function: every reconnection asks again for the boards held by then.
    const auth = (send) => send({ token: this.#token, boards: this.#held });
    const options = { path: SOCKET_PATH, ...socketOptions, auth };
    this.socket = url === undefined ? io(options) : io(url, options);
    this.socket.on("connect", () => {
      // A new connection starts with each board's current top 10, which counts even if older
      // than one seen before: a restarted single-process server counts from 0 again.
      this.#versions.clear();
    });
    this.socket.on("disconnect", (reason) => {
      // A web node shutting down closes its connections on purpose, and Socket.IO does not
      // reconnect by itself after that: reconnect, to another node.
      if (reason === "io server disconnect") this.socket.connect();
    });
    this.socket.on(LEADERBOARD_EVENT, (update) => {
      if (!this.#versions.accept(update)) return;
      for (const handler of this.#handlers) handler(update);
    });
  }

  get boards() {
    return [...this.#held];
  }

  subscribe(boards) {
    return this.#changeBoards("subscribe", boards);
  }

  unsubscribe(boards) {
    return this.#changeBoards("unsubscribe", boards);
  }

  async #changeBoards(event, boards) {
    const ack = await this.socket.timeout(this.#ackTimeoutMs).emitWithAck(event, { boards });
    if (ack.status === "success") {
      const before = new Set(this.#held);
      const after = new Set(ack.boards);
      // A board held anew starts over with its snapshot, whatever version was seen before.
      for (const board of new Set([...before, ...after])) {
        if (before.has(board) !== after.has(board)) this.#versions.forget(board);
      }
      this.#held = ack.boards;
    }
    return ack;
  }

  onLeaderboardUpdate(handler) {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  postScore(request) {
    return postScore({ url: this.#url, token: this.#token, ...this.#posting, ...request });
  }

  close() {
    this.#handlers.clear();
    this.socket.off();
    this.socket.disconnect();
  }
}

export async function postScore({
  url,
  token,
  userId,
  score,
  username,
  board = GLOBAL_BOARD,
  idempotencyKey = newIdempotencyKey(),
  retries = 3,
  fetch = globalThis.fetch,
}) {
  const target = new URL(
    `/api/boards/${encodeURIComponent(board)}/scores`,
    url ?? globalThis.location?.href,
  );
  const request = {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      "Content-Type": "application/json",
      "Idempotency-Key": idempotencyKey, // the same on every retry: the service counts it once
    },
    body: JSON.stringify({ userId, score, username }),
  };
  for (let attempt = 0; ; attempt += 1) {
    const response = await fetch(target, request);
    const body = await response.json().catch(() => null);
    if (response.ok) return body;
    const retryAfter = retryAfterSeconds(response.headers.get("Retry-After"));
    const message = body?.message ?? `${response.status} ${response.statusText}`;
    if (!RETRIED_STATUSES.has(response.status) || attempt >= retries) {
      throw new ScoreboardError(response.status, message, retryAfter);
    }
    await sleep((retryAfter ?? 1) * 1000);
  }
}

// crypto.randomUUID needs a secure context; getRandomValues works on plain HTTP pages too.
function newIdempotencyKey() {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function retryAfterSeconds(header) {
  if (header === null) return null;
  const seconds = Number(header);
  if (header.trim() !== "" && Number.isFinite(seconds)) return Math.max(seconds, 0);
  const date = Date.parse(header); // Retry-After may also be an HTTP date
  return Number.isNaN(date) ? null : Math.max((date - Date.now()) / 1000, 0);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
