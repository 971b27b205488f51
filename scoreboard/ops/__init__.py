"""Operations: health, readiness, metrics, logs and worker heartbeats."""
