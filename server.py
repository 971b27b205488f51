"""Entry point of the web process (Procfile: `web: python server.py`)."""

from scoreboard.web.process import main

if __name__ == "__main__":
    main()
