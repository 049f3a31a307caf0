"""`manage.py` commands that look inside routers."""
