"""Alembic migration scripts of the db package (env.py, versions/); see db.database."""
