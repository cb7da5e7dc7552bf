"""Adapters: the SQLAlchemy 2.x implementation of each repository port."""
