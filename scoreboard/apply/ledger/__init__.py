"""The PostgreSQL ledger: the durable record of every applied update (with DATABASE_URL)."""
