"""PostgreSQL fingerprint: the catalog, object kind by object kind, and each table's rows.

Rows are hashed in the server (`hashtextextended(row::text)` with two seeds, 128 bits) and summed,
so rows never travel and memory stays constant whatever the table size: a sum ignores row order
(VACUUM FULL, CLUSTER, updates move rows), and unlike XOR two identical rows do not cancel out.
The row text is made stable first (UTC, ISO dates, hex bytea, shortest exact floats), so a
session's settings cannot change it.

Objects are named like tables: plain in `public`, `schema.name` elsewhere; table-scoped objects
(columns, constraints, triggers, policies) as `table.name`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tminus.db import pgtools
from tminus.db.fingerprint.diff import SCHEMA_KEY, Fingerprint, short
from tminus.db.fingerprint.select import combine, is_own_table, select_tables

if TYPE_CHECKING:
    import psycopg

_USER_NS = ("n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'"
            " AND n.nspname NOT LIKE 'pg\\_temp\\_%'")
# objects created by an extension are the extension's (its version is recorded instead)
def _not_ext(catalog: str, oid: str) -> str:
    return (f"NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass"
            f" AND d.objid = {oid} AND d.deptype = 'e')")


_REL_NOT_EXT = _not_ext("pg_class", "c.oid")
_STABLE_TEXT = ("SELECT set_config('TimeZone', 'UTC', false), set_config('DateStyle', 'ISO, YMD', false),"
                " set_config('IntervalStyle', 'postgres', false), set_config('bytea_output', 'hex', false),"
                " set_config('extra_float_digits', '1', false)")


def qualify(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


def pg_fingerprint(conn: psycopg.Connection[Any], tables: list[str] | None = None, *,
                   include_tminus: bool = False, sequence_values: bool = True, rows: bool = True) -> Fingerprint:
    """Fingerprint over an open connection (the caller chooses the snapshot).

    `tables`: only those tables and what belongs to them (columns, indexes, constraints, triggers,
    owned sequences); database-wide objects (views, functions, schemas...) only without it.
    `sequence_values=False` leaves out last_value/is_called, which are not transactional: a
    backup drill compares a dump with a snapshot, and sequences may move in between.
    `rows=False`: the schema only (each table's entry is empty; no row is read), the cheap check
    a migration revert uses. The stable-text settings are then local to the caller's transaction:
    the connection may be a migrator's, whose later statements must keep their session settings.
    """
    conn.execute(_STABLE_TEXT if rows else _STABLE_TEXT.replace("false)", "true)"))
    rels = conn.execute(
        "SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {_USER_NS}"
        f" AND {_REL_NOT_EXT} ORDER BY 2, 3").fetchall()
    found = {qualify(s, n): (s, n) for _, s, n in rels if include_tminus or not is_own_table(n)}
    oids = {qualify(s, n): int(oid) for oid, s, n in rels}
    chosen = select_tables(found, tables)
    result: Fingerprint = {}
    for table in chosen:
        schema, name = found[table]
        if not rows:
            result[table] = {}
            continue
        count, hi, lo = conn.execute(
            "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0),"
            f" coalesce(sum(hashtextextended(t::text, 1)), 0) FROM {pgtools.ident(schema)}.{pgtools.ident(name)} t"
        ).fetchone() or (0, 0, 0)
        result[table] = {"rows": int(count), "checksum": combine(int(count), int(hi), int(lo))}
    result[SCHEMA_KEY] = _schema(conn, {oids[t]: t for t in chosen}, whole=tables is None,
                                 sequence_values=sequence_values)
    return result


def _schema(conn: psycopg.Connection[Any], tables: dict[int, str], *, whole: bool,
            sequence_values: bool) -> dict[str, dict[str, dict[str, Any]]]:
    kinds: dict[str, dict[str, dict[str, Any]]] = {}

    def put(kind: str, name: str, **attrs: Any) -> None:
        kinds.setdefault(kind, {})[name] = {k: short(v) for k, v in attrs.items()}

    rels = dict(tables)  # oid -> name of every relation whose parts we record (tables, views)
    for oid, acl, comment, rls, persistence, options in conn.execute(
        "SELECT oid, relacl::text, obj_description(oid, 'pg_class'), relrowsecurity, relpersistence,"
        " reloptions::text FROM pg_class WHERE oid = ANY(%s)", (list(tables),)
    ).fetchall():
        put("table", tables[oid], grants=acl, comment=comment, row_security=rls, persistence=persistence,
            options=options)
    if whole:
        for oid, schema, name, kind, definition, acl, comment in conn.execute(
            "SELECT c.oid, n.nspname, c.relname, c.relkind, pg_get_viewdef(c.oid), c.relacl::text,"
            " obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            f" WHERE c.relkind IN ('v', 'm') AND {_USER_NS} AND {_REL_NOT_EXT}"
        ).fetchall():
            rels[int(oid)] = qualify(schema, name)
            put("view" if kind == "v" else "materialized view", qualify(schema, name),
                definition=definition, grants=acl, comment=comment)
    table_oids = list(tables)
    for relid, col, typ, notnull, default, identity, generated, comment, acl, collation, position in conn.execute(
        "SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
        " pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, col_description(a.attrelid, a.attnum),"
        " a.attacl::text, CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END,"
        " row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)"
        " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped", (table_oids,)
    ).fetchall():
        put("column", f"{tables[relid]}.{col}", position=int(position), type=typ, not_null=notnull,
            default=default, identity=identity or None, generated=generated or None, collation=collation,
            comment=comment, grants=acl)
    for relid, schema, name, definition, valid, ready, comment in conn.execute(
        "SELECT i.indrelid, n.nspname, c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisready,"
        " obj_description(i.indexrelid, 'pg_class') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indrelid = ANY(%s)", (list(rels),)
    ).fetchall():
        put("index", qualify(schema, name), table=rels[relid], definition=definition, valid=valid, ready=ready,
            comment=comment)
    for relid, name, definition, comment in conn.execute(
        "SELECT conrelid, conname, pg_get_constraintdef(oid), obj_description(oid, 'pg_constraint')"
        " FROM pg_constraint WHERE conrelid = ANY(%s)", (table_oids,)
    ).fetchall():
        put("constraint", f"{tables[relid]}.{name}", definition=definition, comment=comment)
    for relid, name, definition, enabled, comment in conn.execute(
        "SELECT tgrelid, tgname, pg_get_triggerdef(oid), tgenabled, obj_description(oid, 'pg_trigger')"
        " FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = ANY(%s)", (list(rels),)
    ).fetchall():
        put("trigger", f"{rels[relid]}.{name}", definition=definition, enabled=enabled, comment=comment)
    for relid, name, permissive, roles, cmd, using, check in conn.execute(
        "SELECT polrelid, polname, polpermissive, polroles::regrole[]::text, polcmd,"
        " pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)"
        " FROM pg_policy WHERE polrelid = ANY(%s)", (table_oids,)
    ).fetchall():
        put("policy", f"{tables[relid]}.{name}", permissive=permissive, roles=roles, command=cmd,
            using=using, check=check)
    for relid, name, definition, comment in conn.execute(
        "SELECT ev_class, rulename, pg_get_ruledef(oid), obj_description(oid, 'pg_rewrite') FROM pg_rewrite"
        " WHERE rulename <> '_RETURN' AND ev_class = ANY(%s)", (list(rels),)
    ).fetchall():
        put("rule", f"{rels[relid]}.{name}", definition=definition, comment=comment)
    for relid, schema, name, definition, comment in conn.execute(
        "SELECT s.stxrelid, n.nspname, s.stxname, pg_get_statisticsobjdef(s.oid),"
        " obj_description(s.oid, 'pg_statistic_ext') FROM pg_statistic_ext s"
        " JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE s.stxrelid = ANY(%s)", (table_oids,)
    ).fetchall():
        put("statistics", qualify(schema, name), table=tables[relid], definition=definition, comment=comment)
    _sequences(conn, tables, whole, sequence_values, put)
    if whole:
        _database_wide(conn, put)
    return kinds


def _sequences(conn: psycopg.Connection[Any], tables: dict[int, str], whole: bool, values: bool,
               put: Any) -> None:
    """Sequences: definition always; value when asked. Owned ones follow their table's selection."""
    for schema, name, owner, typ, start, inc, lo, hi, cache, cycle, acl, comment, readable in conn.execute(
        "SELECT n.nspname, c.relname, (SELECT d.refobjid FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
        "   AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1),"
        " format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,"
        " c.relacl::text, obj_description(c.oid, 'pg_class'), has_sequence_privilege(c.oid, 'SELECT')"
        " FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE {_USER_NS} AND {_REL_NOT_EXT} ORDER BY 1, 2"
    ).fetchall():
        if (owner is not None and int(owner) not in tables) or (owner is None and not whole):
            continue  # owned by a table left out (tminus's own, or not in `tables`), or not asked for
        attrs: dict[str, Any] = {"type": typ, "start": start, "increment": inc, "min": lo, "max": hi,
                                 "cache": cache, "cycle": cycle, "grants": acl, "comment": comment}
        if values and not readable:  # reading the value needs SELECT on the sequence
            attrs.update(last_value="(no SELECT privilege)", is_called=None)
        elif values:
            last, called = conn.execute(
                f"SELECT last_value, is_called FROM {pgtools.ident(schema)}.{pgtools.ident(name)}").fetchone() \
                or (None, None)
            attrs.update(last_value=last, is_called=called)
        put("sequence", qualify(schema, name), **attrs)


def _database_wide(conn: psycopg.Connection[Any], put: Any) -> None:
    for name, acl, comment in conn.execute(
        "SELECT n.nspname, n.nspacl::text, obj_description(n.oid, 'pg_namespace') FROM pg_namespace n"
        f" WHERE {_USER_NS} AND {_not_ext('pg_namespace', 'n.oid')}"
    ).fetchall():
        put("schema", name, grants=acl, comment=comment)
    for name, version, schema in conn.execute(
        "SELECT e.extname, e.extversion, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname <> 'plpgsql'"
    ).fetchall():
        put("extension", name, version=version, schema=schema)
    for schema, name, args, kind, definition, acl, comment in conn.execute(
        "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prokind,"
        " CASE WHEN p.prokind = 'a' THEN pg_get_function_result(p.oid) ELSE pg_get_functiondef(p.oid) END,"
        " p.proacl::text, obj_description(p.oid, 'pg_proc')"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        f" WHERE {_USER_NS} AND {_not_ext('pg_proc', 'p.oid')}"
    ).fetchall():
        kind_name = {"p": "procedure", "a": "aggregate"}.get(kind, "function")
        put(kind_name, f"{qualify(schema, name)}({args})", definition=definition, grants=acl, comment=comment)
    for schema, name, typtype, labels, base, notnull, default, checks, acl, comment in conn.execute(
        "SELECT n.nspname, t.typname, t.typtype,"
        " (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e"
        "   WHERE e.enumtypid = t.oid),"
        " format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,"
        " (SELECT string_agg(c.conname || ' ' || pg_get_constraintdef(c.oid), ', ' ORDER BY c.conname)"
        "   FROM pg_constraint c WHERE c.contypid = t.oid),"
        " t.typacl::text, obj_description(t.oid, 'pg_type')"
        " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
        f" WHERE t.typtype IN ('e', 'd') AND {_USER_NS} AND {_not_ext('pg_type', 't.oid')}"
    ).fetchall():
        if typtype == "e":
            put("enum", qualify(schema, name), labels=labels, grants=acl, comment=comment)
        else:
            put("domain", qualify(schema, name), type=base, not_null=notnull, default=default,
                constraints=checks, grants=acl, comment=comment)
