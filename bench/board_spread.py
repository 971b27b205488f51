"""Which board each update and each client of a load run goes to.

With `--boards N` the boards are b0 … b{N-1}. User u always posts to board u mod N, so a board
has about users / N users: with at most 10 of them every update changes that board's top 10 and
is pushed (a freshness sample), the way `--users 10` does on global. Were boards and users
chosen independently, each board would collect a crowd of users at a score of one or two, and
its top 10 would hardly move. Client k holds board k mod N.
"""

from __future__ import annotations

from scoreboard.boards.model import GLOBAL_BOARD_ID

BOARD_ID_PREFIX = "b"

BoardUser = tuple[str, str]  # (board id, user id): what freshness and exactness are kept by


def board_ids(boards: int) -> tuple[str, ...]:
    """The run's boards: b0 … b{N-1}, or global alone when `boards` is 0."""
    if boards == 0:
        return (GLOBAL_BOARD_ID,)
    return tuple(f"{BOARD_ID_PREFIX}{index}" for index in range(boards))


def board_of_user(user: int, boards: int) -> int:
    """The index of the board user `user` (an index into the users) posts to."""
    return user % boards


def board_of_client(client: int, boards: int) -> int:
    """The index of the board client `client` (numbered over every client process) holds."""
    return client % boards
