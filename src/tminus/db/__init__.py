"""Database helpers behind the `migrate`, `backup`, `restore`, `fingerprint` and `migration_lint` kinds
and the `tminus db ...` commands.

Modules are imported directly (`tminus.db.migrations`, ...) so that SQLAlchemy and drivers load only
when a database feature is used; this package deliberately imports nothing.
"""
