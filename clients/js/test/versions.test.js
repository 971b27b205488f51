// BoardVersions: which pushes onLeaderboardUpdate hands on, and which it drops as stale.
import assert from "node:assert/strict";
import { test } from "node:test";

import { BoardVersions } from "../index.js";

const push = (version, boardId, season) => ({ event: "leaderboardUpdate", boardId, season, version, top10: [] });

test("an older or repeated version of a board is dropped, a newer one kept", () => {
  const versions = new BoardVersions();
  assert.equal(versions.accept(push(2)), true);
  assert.equal(versions.accept(push(1)), false); // late, from another worker
  assert.equal(versions.accept(push(2)), false); // the same again
  assert.equal(versions.accept(push(3)), true);
});

test("each board counts apart, and global is the board without boardId", () => {
  const versions = new BoardVersions();
  assert.equal(versions.accept(push(5, "weekly", 1)), true);
  assert.equal(versions.accept(push(1)), true);
  assert.equal(versions.accept(push(1, "global", 1)), false); // global's, spelled out
  assert.equal(versions.accept(push(4, "weekly", 1)), false);
  assert.equal(versions.accept(push(1, "daily", 1)), true);
});

test("a new season starts over at any version, and an older season is dropped", () => {
  const versions = new BoardVersions();
  assert.equal(versions.accept(push(9, "weekly", 2)), true);
  assert.equal(versions.accept(push(0, "weekly", 3)), true);
  assert.equal(versions.accept(push(10, "weekly", 2)), false);
  assert.equal(versions.accept(push(1, "weekly", 3)), true);
});

test("a board forgotten, or all cleared, takes any version again", () => {
  const versions = new BoardVersions();
  versions.accept(push(7, "weekly", 1));
  versions.accept(push(7));
  versions.forget("weekly");
  assert.equal(versions.accept(push(7, "weekly", 1)), true);
  assert.equal(versions.accept(push(7)), false);
  versions.clear();
  assert.equal(versions.accept(push(0)), true);
});
