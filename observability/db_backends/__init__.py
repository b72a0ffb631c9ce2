"""Database ENGINEs: django-prometheus's backends, configured (see each base.py)."""
