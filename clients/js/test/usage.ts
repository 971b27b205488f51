// Compiled by `tsc --noEmit -p test` (tests/test_client_js.py): what index.d.ts lets a program
// write, and, under @ts-expect-error, what it must refuse.
import {
  type BoardsAck,
  type LeaderboardUpdate,
  type ScoreAccepted,
  ScoreboardError,
  connect,
  postScore,
} from "scoreboard-client";

const client = connect({ url: "https://scores.example.com", token: "jwt", boards: ["weekly"] });

const stop: () => void = client.onLeaderboardUpdate((update: LeaderboardUpdate) => {
  const board: string = update.boardId ?? "global";
  const season: number = update.season ?? 1;
  const rows: string[] = update.top10.map((row) => `${row.username} ${row.score} ${board} ${season}`);
  console.log(update.version, rows);
});
stop();

client.socket.on("connect_error", (error: Error) => console.error(error.message));

async function use(): Promise<void> {
  const ack: BoardsAck = await client.subscribe(["daily"]);
  if (ack.status === "success") {
    const held: string[] = ack.boards;
    console.log(held);
  } else {
    const why: string = ack.message;
    console.log(why);
  }
  await client.unsubscribe(["daily"]);
  try {
    const accepted: ScoreAccepted = await client.postScore({ userId: "alice", score: 5, board: "weekly" });
    const total: number = accepted.newScore;
    console.log(total);
    await postScore({ token: "service-jwt", userId: "bob", score: 3, username: "Bob", idempotencyKey: "k", retries: 1 });
  } catch (error) {
    if (error instanceof ScoreboardError) {
      const status: number = error.status;
      const wait: number | null = error.retryAfterSeconds;
      console.log(status, wait, error.message);
    }
  }
  client.close();
}
void use();

// @ts-expect-error a token is required
connect({ url: "https://scores.example.com" });
// @ts-expect-error boards are ids
void client.subscribe("daily");
// @ts-expect-error a score is a number
void client.postScore({ userId: "alice", score: "5" });
// @ts-expect-error userId is required
void postScore({ token: "jwt", score: 5 });
client.onLeaderboardUpdate((update) => {
  // @ts-expect-error a push has no such field
  console.log(update.rank);
});
// @ts-expect-error the server accepts no such event
client.socket.emit("reset", {});
