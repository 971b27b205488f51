// The client against a running service (web node and worker), which tests/test_client_js.py
// starts: SCOREBOARD_URL, SCOREBOARD_JWT_SECRET (to sign tokens) and SCOREBOARD_RATE_LIMIT
// (the score limit per user it runs with, "N/second").
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";

import { connect, postScore } from "../index.js";

const url = process.env.SCOREBOARD_URL;
const secret = process.env.SCOREBOARD_JWT_SECRET;
const rateLimit = /^(\d+)\/second$/.exec(process.env.SCOREBOARD_RATE_LIMIT ?? "");
if (!url || !secret || !rateLimit) {
  throw new Error("set SCOREBOARD_URL, SCOREBOARD_JWT_SECRET and SCOREBOARD_RATE_LIMIT (N/second)");
}
const PER_SECOND = Number(rateLimit[1]);
const WAIT_MS = 10_000;

function token(sub, claims = {}) {
  const now = Math.floor(Date.now() / 1000);
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const name = sub[0].toUpperCase() + sub.slice(1);
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub, name, iat: now, exp: now + 3600, ...claims })}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}

async function api(method, path, tokenOf, body) {
  const response = await fetch(new URL(path, url), {
    method,
    headers: { Authorization: `Bearer ${tokenOf}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

async function makeBoards(...boardIds) {
  const admin = token("root", { role: "admin" });
  for (const boardId of boardIds) {
    const made = await api("PUT", `/api/admin/boards/${boardId}`, admin, { name: boardId });
    assert.ok(made.status === 200 || made.status === 201, JSON.stringify(made));
  }
}

// A client that keeps every update it hands on; `until` waits for one that satisfies `wanted`.
function watch(t, options) {
  const client = connect({ url, socketOptions: { transports: ["websocket"] }, ...options });
  t.after(() => client.close());
  const updates = [];
  const waiting = new Set();
  client.onLeaderboardUpdate((update) => {
    updates.push(update);
    for (const wait of waiting) wait(update);
  });
  const until = (wanted) =>
    new Promise((resolve, reject) => {
      const found = updates.find(wanted);
      if (found) return resolve(found);
      const timer = setTimeout(() => reject(new Error(`no such update after ${WAIT_MS} ms`)), WAIT_MS);
      const wait = (update) => {
        if (!wanted(update)) return;
        clearTimeout(timer);
        waiting.delete(wait);
        resolve(update);
      };
      waiting.add(wait);
    });
  return { client, updates, until };
}

const has = (userId, score) => (update) => update.top10.some((row) => row.userId === userId && row.score === score);
const onBoard = (boardId) => (update) => (update.boardId ?? "global") === boardId;

// The user's score on global once the worker has applied `expected` (or the last seen).
async function appliedScore(userId, tokenOf, expected) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const rank = await api("GET", `/api/users/${userId}/rank`, tokenOf);
    const score = rank.status === 200 ? rank.body.user.score : null;
    if (score === expected || Date.now() > deadline) return score;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("connecting, the first update is the board as it stands", async (t) => {
  const hana = token("hana");
  await postScore({ url, token: hana, userId: "hana", score: 4 });
  assert.equal(await appliedScore("hana", hana, 4), 4);
  const page = await api("GET", "/api/leaderboard?limit=10", hana);
  const { client, until } = watch(t, { token: token("viewer") });
  const first = await until(() => true);
  assert.deepEqual(first, {
    event: "leaderboardUpdate",
    version: page.body.version,
    top10: page.body.entries.map(({ userId, username, score }) => ({ userId, username, score })),
  });
  assert.deepEqual(client.boards, ["global"]);
});

test("a client subscribed to two boards gets those two and nothing else", async (t) => {
  await makeBoards("red", "blue", "green");
  const viewer = token("viewer");
  const chosen = watch(t, { token: viewer, boards: [] });
  const others = watch(t, { token: viewer, boards: ["green", "global"] });
  assert.deepEqual(await chosen.client.subscribe(["red", "blue"]), { status: "success", boards: ["blue", "red"] });
  assert.deepEqual(chosen.client.boards, ["blue", "red"]);
  const refused = await chosen.client.subscribe(["nope"]);
  assert.deepEqual(refused, { status: "error", message: "Unknown board: nope" });

  const ivan = token("ivan");
  for (const board of ["green", "global"]) await postScore({ url, token: ivan, userId: "ivan", score: 3, board });
  await others.until((update) => onBoard("green")(update) && has("ivan", 3)(update));
  await others.until((update) => onBoard("global")(update) && has("ivan", 3)(update));
  for (const board of ["red", "blue"]) await postScore({ url, token: ivan, userId: "ivan", score: 2, board });
  await chosen.until((update) => onBoard("red")(update) && has("ivan", 2)(update));
  await chosen.until((update) => onBoard("blue")(update) && has("ivan", 2)(update));

  assert.deepEqual(new Set(chosen.updates.map((update) => update.boardId)), new Set(["red", "blue"]));
  assert.deepEqual(await chosen.client.unsubscribe(["red"]), { status: "success", boards: ["blue"] });
  assert.deepEqual(chosen.client.boards, ["blue"]);
});

test("postScore answers the typed acceptance with the user's new total", async (t) => {
  const jane = token("jane");
  const first = await postScore({ url, token: jane, userId: "jane", score: 5 });
  const { client } = watch(t, { token: jane }); // the client's own postScore: its URL and token
  const second = await client.postScore({ userId: "jane", score: 2 });
  assert.deepEqual(first, { status: "success", message: "Score update queued", newScore: 5 });
  assert.equal(second.newScore, 7);
});

// Records each request postScore sends and what it was answered.
function recordingFetch(answerInstead = () => null) {
  const sent = [];
  const recording = async (target, request) => {
    const response = await fetch(target, request);
    const replaced = answerInstead(sent.length);
    sent.push({ at: Date.now(), key: request.headers["Idempotency-Key"], status: replaced?.status ?? response.status, retryAfter: response.headers.get("Retry-After") });
    return replaced ?? response;
  };
  return { sent, fetch: recording };
}

test("over the rate limit, it waits Retry-After and retries until every score is in", async () => {
  const kim = token("kim");
  const { sent, fetch } = recordingFetch();
  const posts = Array.from({ length: PER_SECOND + 1 }, () => postScore({ url, token: kim, userId: "kim", score: 1, fetch }));
  const totals = (await Promise.all(posts)).map((answer) => answer.newScore);
  assert.deepEqual(totals.sort((a, b) => a - b), Array.from({ length: PER_SECOND + 1 }, (_, index) => index + 1));
  const refused = sent.filter((request) => request.status === 429);
  assert.ok(refused.length >= 1, JSON.stringify(sent));
  for (const refusal of refused) {
    const retry = sent.find((request) => request.key === refusal.key && request.at > refusal.at);
    assert.ok(retry, "a refused score is sent again with its Idempotency-Key");
    assert.ok(retry.at - refusal.at >= Number(refusal.retryAfter) * 1000 - 20, `${retry.at - refusal.at} ms`);
  }
  assert.equal(await appliedScore("kim", kim, PER_SECOND + 1), PER_SECOND + 1);
});

test("a retry of a score the service took is answered again, not counted twice", async () => {
  const lena = token("lena");
  // The first answer is lost on its way back: the client sees 503 and retries.
  const lost = () => new Response(JSON.stringify({ status: "error", message: "lost" }), { status: 503, headers: { "Retry-After": "1" } });
  const { sent, fetch } = recordingFetch((index) => (index === 0 ? lost() : null));
  const answer = await postScore({ url, token: lena, userId: "lena", score: 4, fetch });
  assert.equal(answer.newScore, 4);
  assert.deepEqual(sent.map((request) => request.status), [503, 200]);
  assert.equal(sent[0].key, sent[1].key);
  const again = await postScore({ url, token: lena, userId: "lena", score: 4, idempotencyKey: sent[0].key });
  assert.equal(again.newScore, 4);
  // Once a later score is applied, anything queued before it is too: 4 was counted once.
  assert.equal((await postScore({ url, token: lena, userId: "lena", score: 1 })).newScore, 5);
  assert.equal(await appliedScore("lena", lena, 5), 5);
});
