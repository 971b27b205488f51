# One image for both processes: `python server.py` (the default) and `python worker.py`.
# Untested: Docker does not run on the development machine.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY scoreboard ./scoreboard
COPY server.py worker.py ./

USER nobody
# PORT (web) and METRICS_PORT (worker) defaults.
EXPOSE 3000 9464
CMD ["python", "server.py"]
