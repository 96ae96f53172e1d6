"""The migration safety rules: which PostgreSQL statements lock, rewrite or break the running version.

Rules read `Statement.sql`, the statement with comments and literals blanked out and whitespace
collapsed (see tminus.db.lint), so a keyword inside a string or a comment never matches. They are
deliberately pattern based: a migration linter that needs a full SQL parser would be skipped
when it chokes, and these few shapes cover what actually takes production down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Risk = Literal["high", "medium", "low"]

NO_TX_HEADER = "-- tminus: no-transaction"


@dataclass(frozen=True)
class Rule:
    id: str
    risk: Risk
    what: str  # why it is risky; `{subject}` names the table/column/statement
    safer: str


_EXPAND_CONTRACT = "expand/contract: release code that no longer uses it first, then drop it in a later migration"

RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            "add-column-not-null-no-default", "high",
            "ADD COLUMN {subject} NOT NULL without a DEFAULT fails on a table that has rows, and the running"
            " version's INSERTs that omit the column start failing",
            "add the column nullable, backfill in batches, add CHECK (col IS NOT NULL) NOT VALID and VALIDATE it"
            " in a later migration, then SET NOT NULL (PostgreSQL 12+ skips the scan) and drop the check",
        ),
        Rule(
            "create-index-not-concurrently", "high",
            "CREATE INDEX on existing table {subject} without CONCURRENTLY blocks every write to the table"
            " while the index builds",
            f"CREATE INDEX CONCURRENTLY in its own migration file starting with '{NO_TX_HEADER}'",
        ),
        Rule(
            "concurrently-in-transaction", "medium",
            "{subject}: CONCURRENTLY cannot run inside a transaction block, so this migration fails",
            f"start the file with '{NO_TX_HEADER}', remove BEGIN/COMMIT, and keep the concurrent statement"
            " alone in its file",
        ),
        Rule(
            "alter-column-type", "high",
            "ALTER COLUMN {subject} TYPE takes an ACCESS EXCLUSIVE lock and rewrites the table and its indexes"
            " (unless the change is binary-compatible, e.g. varchar(n) to text)",
            "add a column of the new type, backfill it (dual writes or a trigger keep it current), switch"
            " reads to it, then drop the old column in a later migration",
        ),
        Rule(
            "drop-column", "high",
            "DROP COLUMN {subject} breaks the running version, which still reads or writes the column",
            _EXPAND_CONTRACT,
        ),
        Rule(
            "drop-table", "high",
            "DROP TABLE {subject} breaks the running version, which still reads or writes the table",
            _EXPAND_CONTRACT + " (and take a backup: a dropped table is not undone by a down migration)",
        ),
        Rule(
            "rename-column", "high",
            "RENAME COLUMN {subject} breaks the running version, which still uses the old name",
            "expand/contract: add the new column, write both, backfill, move reads, then drop the old column"
            " in a later migration",
        ),
        Rule(
            "rename-table", "high",
            "RENAME TABLE {subject} breaks the running version, which still uses the old name",
            "expand/contract: create the new name (a new table, or a view over the old one), move the code"
            " to it in a release, then drop the old name in a later migration",
        ),
        Rule(
            "fk-without-not-valid", "high",
            "ADD FOREIGN KEY on {subject} without NOT VALID checks every row while locking both tables"
            " against writes",
            "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT ... in a"
            " separate migration (validation takes a lock that allows reads and writes)",
        ),
        Rule(
            "check-without-not-valid", "high",
            "ADD CHECK on {subject} without NOT VALID scans the whole table under an ACCESS EXCLUSIVE lock,"
            " blocking reads and writes",
            "ADD CONSTRAINT ... CHECK (...) NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT ... in a"
            " separate migration",
        ),
        Rule(
            "missing-lock-timeout", "medium",
            "{subject} takes a lock that blocks the table, but the file sets no lock_timeout: waiting behind"
            " a long transaction queues every query on the table (`tminus migrate` sets lock_timeout"
            " itself; psql and other runners do not)",
            "SET lock_timeout = '5s'; at the top of the file, and retry the migration when it times out",
        ),
    )
}


@dataclass(frozen=True)
class Statement:
    sql: str  # code only: comments and literals blanked, whitespace collapsed to single spaces
    raw: str  # the statement as written, for set_config() and excerpts
    line: int  # 1-based line of the statement's first code character
    end_line: int


@dataclass(frozen=True)
class Hit:
    statement: Statement
    rule: str
    subject: str


# --- names -------------------------------------------------------------------------------

_PART = r'(?:"[^"]*"|[\w$]+)'
_NAME = rf"{_PART}(?:\s?\.\s?{_PART})*"


def table_key(name: str) -> str:
    """Compare tables by their last name part: unquoted names fold to lower case in PostgreSQL."""
    last = re.findall(_PART, name)[-1]
    return last[1:-1] if last.startswith('"') else last.lower()


# --- statement shapes -------------------------------------------------------------------------

_I = re.IGNORECASE
_CREATE_TABLE = re.compile(
    rf"^CREATE (?:OR REPLACE )?(?:(?:GLOBAL|LOCAL) )?(?:(?:TEMP|TEMPORARY|UNLOGGED) )?"
    rf"(?:TABLE|MATERIALIZED VIEW) (?:IF NOT EXISTS )?(?P<name>{_NAME})",
    _I,
)
_CREATE_INDEX = re.compile(
    rf"^CREATE (?:UNIQUE )?INDEX (?P<conc>CONCURRENTLY )?.*?\bON (?:ONLY )?(?P<table>{_NAME})", _I
)
_ALTER_TABLE = re.compile(rf"^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?(?P<name>{_NAME}) ?\*? (?P<actions>.*)$", _I)
_DROP_TABLE = re.compile(rf"^DROP TABLE (?:IF EXISTS )?(?P<names>{_NAME}(?: ?, ?{_NAME})*)", _I)
_BEGIN = re.compile(r"^(?:BEGIN|START TRANSACTION)\b", _I)
_SET_LOCK_TIMEOUT = re.compile(r"^SET (?:SESSION |LOCAL )?lock_timeout\b", _I)
_TIMEOUT_VALUE = re.compile(r"(?:=|\bTO\b)\s*'?\s*(?P<value>[\w.]*)", _I)
_NO_TIMEOUT = re.compile(r"0*\.?0*(?:us|ms|s|min|h|d)?|DEFAULT", _I)
_SET_CONFIG_LOCK_TIMEOUT = re.compile(r"set_config\s*\(\s*'lock_timeout'", _I)
# Statements other than ALTER TABLE that queue for a table lock blocking writes (or everything).
_LOCKING = re.compile(
    r"^(?:DROP (?:TABLE|MATERIALIZED VIEW)\b|DROP INDEX (?!CONCURRENTLY\b)|TRUNCATE\b|LOCK\b|CLUSTER\b"
    r"|VACUUM (?:\(.*\bFULL\b|FULL\b)|REINDEX\b(?!.*\bCONCURRENTLY\b)|REFRESH MATERIALIZED VIEW (?!CONCURRENTLY\b))",
    _I,
)

# ALTER TABLE actions
_ADD_FK_OR_CHECK = re.compile(rf"^ADD (?:CONSTRAINT {_PART} )?(?P<kind>FOREIGN KEY|CHECK)\b", _I)
_ADD_OTHER_CONSTRAINT = re.compile(r"^ADD (?:CONSTRAINT|PRIMARY KEY|UNIQUE|EXCLUDE|FOREIGN KEY|CHECK)\b", _I)
_ADD_COLUMN = re.compile(rf"^ADD (?:COLUMN )?(?:IF NOT EXISTS )?(?P<col>{_PART})", _I)
_NOT_NULL = re.compile(r"(?<!\bIS )\bNOT NULL\b", _I)
_FILLS_ROWS = re.compile(r"\b(?:DEFAULT|GENERATED)\b", _I)
_ALTER_TYPE = re.compile(rf"^ALTER (?:COLUMN )?(?P<col>{_PART}) (?:SET DATA )?TYPE\b", _I)
_DROP_COLUMN = re.compile(rf"^DROP (?!CONSTRAINT\b)(?:COLUMN )?(?:IF EXISTS )?(?P<col>{_PART})", _I)
_RENAME_TABLE = re.compile(rf"^RENAME TO (?P<new>{_PART})", _I)
_RENAME_COLUMN = re.compile(rf"^RENAME (?!CONSTRAINT\b)(?:COLUMN )?(?P<old>{_PART}) TO (?P<new>{_PART})", _I)
_NOT_VALID = re.compile(r"\bNOT VALID\b", _I)
_VALIDATE = re.compile(r"^VALIDATE CONSTRAINT\b", _I)


def split_actions(actions: str) -> list[str]:
    """ALTER TABLE's comma-separated actions; commas inside parentheses belong to an action."""
    out: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(actions):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            out.append(actions[start:i].strip())
            start = i + 1
    out.append(actions[start:].strip())
    return [a for a in out if a]


def _alter_table_hits(stmt: Statement, table: str, actions: list[str]) -> list[Hit]:
    hits: list[Hit] = []
    for action in actions:
        if m := _ADD_FK_OR_CHECK.match(action):
            if not _NOT_VALID.search(action):
                rule = "fk-without-not-valid" if m["kind"].upper().startswith("FOREIGN") else "check-without-not-valid"
                hits.append(Hit(stmt, rule, table))
        elif _ADD_OTHER_CONSTRAINT.match(action):
            continue
        elif m := _ADD_COLUMN.match(action):
            if _NOT_NULL.search(action) and not _FILLS_ROWS.search(action):
                hits.append(Hit(stmt, "add-column-not-null-no-default", f"{table}.{m['col']}"))
        elif m := _ALTER_TYPE.match(action):
            hits.append(Hit(stmt, "alter-column-type", f"{table}.{m['col']}"))
        elif m := _DROP_COLUMN.match(action):
            hits.append(Hit(stmt, "drop-column", f"{table}.{m['col']}"))
        elif m := _RENAME_TABLE.match(action):
            hits.append(Hit(stmt, "rename-table", f"{table} TO {m['new']}"))
        elif m := _RENAME_COLUMN.match(action):
            hits.append(Hit(stmt, "rename-column", f"{table}.{m['old']} TO {m['new']}"))
    return hits


def _sets_a_timeout(raw: str) -> bool:
    """`SET lock_timeout = 0` (or DEFAULT) means wait forever: it does not count. The value is read
    from the raw text because literals are blanked in `Statement.sql`."""
    m = _TIMEOUT_VALUE.search(raw)
    return m is not None and not _NO_TIMEOUT.fullmatch(m["value"])


def _first_words(sql: str, n: int = 3) -> str:
    return " ".join(sql.split(" ")[:n]).upper()


def check_file(statements: list[Statement], *, no_transaction: bool) -> list[Hit]:
    """Every rule over one file's statements, in order. Tables created earlier in the same file are
    exempt from the table rules: nothing is running against them yet and they are empty."""
    new_tables: set[str] = set()
    hits: list[Hit] = []
    begin = next((s for s in statements if _BEGIN.match(s.sql)), None)
    lock_timeout_set = False
    lock_flagged = False
    for stmt in statements:
        sql = stmt.sql
        locks: str | None = None  # what takes the lock, for missing-lock-timeout
        if m := _CREATE_TABLE.match(sql):
            new_tables.add(table_key(m["name"]))
        elif m := _CREATE_INDEX.match(sql):
            if not m["conc"] and table_key(m["table"]) not in new_tables:
                hits.append(Hit(stmt, "create-index-not-concurrently", m["table"]))
                locks = f"CREATE INDEX on {m['table']}"
        elif m := _ALTER_TABLE.match(sql):
            if table_key(m["name"]) not in new_tables:
                actions = split_actions(m["actions"])
                hits.extend(_alter_table_hits(stmt, m["name"], actions))
                if not all(_VALIDATE.match(a) for a in actions):
                    locks = f"ALTER TABLE {m['name']}"
        elif m := _DROP_TABLE.match(sql):
            names = [n.strip() for n in re.findall(_NAME, m["names"])]
            old = [n for n in names if table_key(n) not in new_tables]
            if old:
                hits.append(Hit(stmt, "drop-table", ", ".join(old)))
                locks = f"DROP TABLE {', '.join(old)}"
        elif _SET_LOCK_TIMEOUT.match(sql):
            lock_timeout_set = _sets_a_timeout(stmt.raw)
        elif _SET_CONFIG_LOCK_TIMEOUT.search(stmt.raw):
            lock_timeout_set = True
        elif _LOCKING.match(sql):
            locks = _first_words(sql)

        if re.search(r"\bCONCURRENTLY\b", sql, _I) and not sql.upper().startswith("REFRESH "):
            # REFRESH MATERIALIZED VIEW CONCURRENTLY is the one form allowed in a transaction.
            if not no_transaction:
                hits.append(Hit(stmt, "concurrently-in-transaction", f"the file has no '{NO_TX_HEADER}' header"))
            elif begin is not None:
                hits.append(Hit(stmt, "concurrently-in-transaction", f"explicit BEGIN at line {begin.line}"))

        if locks and not lock_timeout_set and not lock_flagged:
            hits.append(Hit(stmt, "missing-lock-timeout", locks))
            lock_flagged = True  # once per file: one SET at the top fixes them all
    return hits
