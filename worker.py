"""Entry point of the worker process (Procfile: `worker: python worker.py`)."""

from scoreboard.worker.process import main

if __name__ == "__main__":
    main()
