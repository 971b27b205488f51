// postScore against a stand-in HTTP server that answers what each test scripts: the retry rules.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";

import { ScoreboardError, postScore } from "../index.js";

// Serves `answers` in turn ([status, headers, body]) and records each request it got.
async function scriptedServer(t, answers) {
  const requests = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      requests.push({ at: Date.now(), url: request.url, headers: request.headers, body: JSON.parse(body) });
      const [status, headers, answer] = answers[Math.min(requests.length, answers.length) - 1];
      response.writeHead(status, { "Content-Type": "application/json", ...headers });
      response.end(JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  return { url: `http://127.0.0.1:${server.address().port}`, requests };
}

const accepted = { status: "success", message: "Score update queued", newScore: 7 };
const busy = [503, { "Retry-After": "1" }, { status: "error", message: "Server busy, try again" }];

test("posts to the board with the token, the body and a fresh Idempotency-Key", async (t) => {
  const server = await scriptedServer(t, [[200, {}, accepted]]);
  const first = await postScore({ url: server.url, token: "T", userId: "ann", score: 7, board: "cup" });
  await postScore({ url: server.url, token: "T", userId: "ann", score: 7, board: "cup" });
  assert.deepEqual(first, accepted);
  const [one, two] = server.requests;
  assert.equal(one.url, "/api/boards/cup/scores");
  assert.equal(one.headers.authorization, "Bearer T");
  assert.deepEqual(one.body, { userId: "ann", score: 7 });
  assert.match(one.headers["idempotency-key"], /^[0-9a-f]{32}$/);
  assert.notEqual(one.headers["idempotency-key"], two.headers["idempotency-key"]);
});

test("the default board is global, and a given key and username are sent", async (t) => {
  const server = await scriptedServer(t, [[200, {}, accepted]]);
  await postScore({ url: server.url, token: "T", userId: "ann", score: 7, username: "Ann", idempotencyKey: "k-1" });
  const [request] = server.requests;
  assert.equal(request.url, "/api/boards/global/scores");
  assert.equal(request.headers["idempotency-key"], "k-1");
  assert.deepEqual(request.body, { userId: "ann", score: 7, username: "Ann" });
});

test("after a 503 it waits Retry-After, then retries with the same key", async (t) => {
  const server = await scriptedServer(t, [busy, [200, {}, accepted]]);
  assert.deepEqual(await postScore({ url: server.url, token: "T", userId: "ann", score: 7 }), accepted);
  const [refused, retried] = server.requests;
  assert.ok(retried.at - refused.at >= 990, `retried after ${retried.at - refused.at} ms`);
  assert.equal(retried.headers["idempotency-key"], refused.headers["idempotency-key"]);
});

test("a Retry-After given as an HTTP date is waited for too", async (t) => {
  const inTwoSeconds = new Date(Date.now() + 2000).toUTCString(); // whole seconds: 1 to 2 s away
  const server = await scriptedServer(t, [[429, { "Retry-After": inTwoSeconds }, { status: "error", message: "Too many requests" }], [200, {}, accepted]]);
  await postScore({ url: server.url, token: "T", userId: "ann", score: 7 });
  const [refused, retried] = server.requests;
  assert.ok(retried.at - refused.at >= 900, `retried after ${retried.at - refused.at} ms`);
});

test("retries are bounded: then it throws the last refusal, typed", async (t) => {
  const server = await scriptedServer(t, [busy]);
  await assert.rejects(postScore({ url: server.url, token: "T", userId: "ann", score: 7, retries: 1 }), (error) => {
    assert.ok(error instanceof ScoreboardError);
    assert.equal(error.status, 503);
    assert.equal(error.message, "Server busy, try again");
    assert.equal(error.retryAfterSeconds, 1);
    return true;
  });
  assert.equal(server.requests.length, 2);
});

test("any other refusal throws at once with the service's message", async (t) => {
  const server = await scriptedServer(t, [[403, {}, { status: "error", message: "A user can only update their own score" }]]);
  await assert.rejects(postScore({ url: server.url, token: "T", userId: "bob", score: 1 }), {
    name: "ScoreboardError",
    status: 403,
    message: "A user can only update their own score",
    retryAfterSeconds: null,
  });
  assert.equal(server.requests.length, 1);
});
