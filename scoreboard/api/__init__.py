"""The HTTP API's contract: bodies, queries, answers and endpoints, each declared once."""
