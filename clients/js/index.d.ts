// Types of the scoreboard client. The payloads are those of the service's AsyncAPI document
// (GET /api/asyncapi.json) and OpenAPI document (GET /api/openapi.json).
import type { ManagerOptions, Socket, SocketOptions } from "socket.io-client";

/** The Socket.IO path of the service. */
export declare const SOCKET_PATH: "/ws/scoreboard";
/** The board every deployment has; its pushes carry no `boardId`. */
export declare const GLOBAL_BOARD: "global";
export declare const LEADERBOARD_EVENT: "leaderboardUpdate";

/** One row of a pushed top 10, best first. */
export interface TopEntry {
  userId: string;
  username: string;
  score: number;
}

/** The payload of `leaderboardUpdate`. */
export interface LeaderboardUpdate {
  event: "leaderboardUpdate";
  /** Left out for `global`. */
  boardId?: string;
  /** The board's live season; left out for `global` (season 1). */
  season?: number;
  /** Grows by one with every change of the board's top 10 within a season. */
  version: number;
  top10: TopEntry[];
}

/** The server's acknowledgement of `subscribe` and `unsubscribe`. */
export type BoardsAck =
  | { status: "success"; /** Every board now held, sorted. */ boards: string[] }
  | { status: "error"; /** Why; nothing changed. */ message: string };

/** The answer to an accepted score. */
export interface ScoreAccepted {
  status: "success";
  message: string;
  /** The user's value on the board once this update and every one before it are applied. */
  newScore: number;
}

export interface ServerToClientEvents {
  leaderboardUpdate: (update: LeaderboardUpdate) => void;
}

export interface ClientToServerEvents {
  subscribe: (request: { boards: string[] }, ack: (answer: BoardsAck) => void) => void;
  unsubscribe: (request: { boards: string[] }, ack: (answer: BoardsAck) => void) => void;
}

/** How postScore sends and retries. */
export interface PostingOptions {
  /** Retries after a 429 or 503, each after the answer's Retry-After (default 3). */
  retries?: number;
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch;
}

export interface ScoreRequest {
  userId: string;
  /** On an `incr` board (and `global`) the amount to add; on `best` and `set` boards the score. */
  score: number;
  /** The name to show; only with a service token, which must send it. */
  username?: string;
  /** Default: `global`. */
  board?: string;
  /** Default: a new random key, the same on every retry of this call. */
  idempotencyKey?: string;
}

export interface PostScoreOptions extends ScoreRequest, PostingOptions {
  /** The service's base URL; default: the page's own origin. */
  url?: string;
  token: string;
}

export interface ConnectOptions extends PostingOptions {
  /** The service's base URL; default: the page's own origin. */
  url?: string;
  /** The bearer token, for the connection and for postScore. */
  token: string;
  /** The boards to hold from the start; default: `global` alone. */
  boards?: string[];
  /** How long subscribe and unsubscribe wait for their acknowledgement (default 10 s). */
  ackTimeoutMs?: number;
  /** Passed on to socket.io-client (transports, reconnection…); `path` and `auth` are set. */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

/** A refused request: the HTTP status and the message of the service's error body. */
export declare class ScoreboardError extends Error {
  readonly name: "ScoreboardError";
  readonly status: number;
  /** The answer's Retry-After in seconds, when it had one. */
  readonly retryAfterSeconds: number | null;
  constructor(status: number, message: string, retryAfterSeconds?: number | null);
}

/** The newest (season, version) seen of each board. */
export declare class BoardVersions {
  /** True if `update` is newer than anything seen of its board (and now the newest). */
  accept(update: LeaderboardUpdate): boolean;
  forget(boardId: string): void;
  clear(): void;
}

export interface ScoreboardClient {
  /** The connection, for its lifecycle events (`connect`, `disconnect`, `connect_error`). */
  readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>;
  /** The boards held, as the last acknowledgement said; a reconnection asks for these. */
  readonly boards: string[];
  /** Hold these boards too; each new one is then sent at once. Rejects without an answer. */
  subscribe(boards: string[]): Promise<BoardsAck>;
  /** Hold these boards no longer. Rejects without an answer in time. */
  unsubscribe(boards: string[]): Promise<BoardsAck>;
  /**
   * Call `handler` with each push newer than the last one seen of its board on this connection
   * (a later season, or a greater version in the same season); returns a function that stops it.
   */
  onLeaderboardUpdate(handler: (update: LeaderboardUpdate) => void): () => void;
  /** postScore with this client's URL and token, unless the request names others. */
  postScore(request: ScoreRequest & Partial<PostScoreOptions>): Promise<ScoreAccepted>;
  /** Disconnect and drop every handler. */
  close(): void;
}

/** Connect to the service's live top 10. */
export declare function connect(options: ConnectOptions): ScoreboardClient;

/**
 * Post a score; on 429 or 503 wait the answer's Retry-After and try again, with the same
 * Idempotency-Key, up to `retries` times. Throws ScoreboardError when refused.
 */
export declare function postScore(options: PostScoreOptions): Promise<ScoreAccepted>;
