"""The FastAPI service that serves one model artifact and logs every prediction to PostgreSQL."""
