"""The runbook format, version 1, as pydantic models.

The spec describes *what* a runbook asks for; it never imports the code that executes it
(the kind modules, tminus.engine): what a kind is (its effect class) it asks tminus.kinds.registry.
Every step is a mapping with common fields (defined once, on
`Step`) and exactly one key naming its kind (`run`, `http`, `sql`, ...), whose value is that
kind's configuration model below.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from tminus.runbook.monitor import AlertRule, Channel
from tminus.runbook.proxy_spec import ProxySpec
from tminus.runbook.requirements import RehearsalRequirement, Requirement
from tminus.runbook.service_spec import ServicePrevious, ServiceSpec
from tminus.runbook.timing import CutoverTime, Stage
from tminus.runbook.types import Duration, EffectClass, Identifier, OnFailure, Retry, Spec
from tminus.templating.contexts import SHELL, SQL

_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

if TYPE_CHECKING:
    from tminus.kinds.base import Effect

# --- kind configurations ---------------------------------------------------------------


class RunSpec(Spec):
    """A shell command. Outputs: stdout, stderr, exit_code (and json with `output: json`)."""

    command: Annotated[str, SHELL]  # each {{ }} is quoted for where it stands (templating/contexts.py)
    shell: str = Field("/bin/sh", description="Interpreter invoked as SHELL -c COMMAND.")
    cwd: str | None = Field(None, description="Working directory, relative to the runbook's folder.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    stdin: str | None = None
    output: Literal["text", "json"] = Field(
        "text", description="json: stdout must be JSON; parsed into steps.<id>.json and the value `json`.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"command": data} if isinstance(data, str) else data


class HttpSpec(Spec):
    """An HTTP request. Outputs: status, headers, json, body."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(None, alias="json", description="A JSON body (sets Content-Type).")
    follow_redirects: bool = False
    verify_tls: bool = True

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"url": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_body(self) -> HttpSpec:
        if self.body is not None and self.json_body is not None:
            raise ValueError("give either 'body' or 'json', not both")
        return self


class SqlSpec(Spec):
    """A SQL query through SQLAlchemy. Outputs: rows, scalar, rowcount."""

    url: str = Field(description="SQLAlchemy URL: sqlite:///path.db, postgresql+psycopg://user@host/db")
    query: Annotated[str | None, SQL] = None  # each {{ }} is a bound parameter (templating/contexts.py)
    file: str | None = Field(None, description="A .sql file, relative to the runbook's folder.")
    params: dict[str, Any] = Field(default_factory=dict, description="Bound parameters (:name).")
    write: bool = Field(
        False,
        description="false: run in a read-only transaction (a check); true: commit changes (an action).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> SqlSpec:
        if (self.query is None) == (self.file is None):
            raise ValueError("give exactly one of 'query' or 'file'")
        return self


class FileSpec(Spec):
    """Files by path or glob (** recurses), and whether they contain a text or pattern."""

    path: str = Field(description="A path or glob, relative to the runbook's folder.")
    exists: bool | None = Field(None, description="true: at least one file matches; false: none does.")
    contains: str | None = Field(None, description="Every matched file contains this.")
    not_contains: str | None = Field(None, description="No matched file contains this.")
    regex: bool = Field(False, description="Treat contains/not_contains as regular expressions.")


class TcpSpec(Spec):
    """A TCP port is open (accepts a connection) or closed."""

    host: str = "127.0.0.1"
    port: int | str = Field(description="1-65535, or a template such as '{{ vars.port }}'.")
    state: Literal["open", "closed"] = "open"

    @field_validator("port")
    @classmethod
    def _port(cls, value: int | str) -> int | str:
        # A template is rendered (and this check repeated) just before the step runs.
        if isinstance(value, str) and "{{" in value:
            return value
        try:
            port = int(value)
        except ValueError:
            raise ValueError(f"expected a port number (1-65535) or a template, got '{value}'") from None
        if not 1 <= port <= 65535:
            raise ValueError(f"a port is between 1 and 65535, got {port}")
        return port


class EnvSpec(Spec):
    """Environment variables present, absent, equal or not equal to a value."""

    present: list[str] = Field(default_factory=list)
    absent: list[str] = Field(default_factory=list)
    equals: dict[str, str] = Field(default_factory=dict)
    not_equal: dict[str, str | list[str]] = Field(default_factory=dict)


class ManualSpec(Spec):
    """An operator confirms something only a person can do."""

    prompt: str
    instructions: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"prompt": data} if isinstance(data, str) else data


class WaitSpec(Spec):
    """Repeat a nested check every `interval` until it passes or the step's timeout passes."""

    check: Step
    interval: Duration = 1.0


class WatchSpec(Spec):
    """Canary analysis between two steps: named probes judged by the monitor's rules for `duration`;
    a firing (or inconclusive) rule fails the step, so its phase rolls back like any failure."""

    duration: Duration = Field(description="How long to watch; all rules quiet this long: the step passes.")
    interval: Duration = Field(description="Time between two probes of each probe.")
    probes: list[Step] = Field(min_length=1, description="Named checks whose values the rules read.")
    rules: list[AlertRule] = Field(min_length=1, description="When the watch fails the step.")


class MigrateColumns(Spec):
    """The columns of an existing migrations table (the application's own) that hold what tminus
    tracks: status and verify read it through this mapping; migrate and revert write rows of its
    shape, keeping the rest in tminus's side table `tminus_<table>`."""

    version: str = Field(description="Column holding each applied version (001, 20240101120000 or 001_x.sql).")
    name: str | None = Field(None, description="Column holding the migration's name.")
    applied_at: str | None = Field(None, description="Column holding when it was applied.")
    checksum: str | None = Field(None, description="Column holding the file's checksum (compared on verify).")

    @field_validator("version", "name", "applied_at", "checksum")
    @classmethod
    def _column(cls, value: str | None) -> str | None:
        if value is not None and not _COLUMN.match(value):
            raise ValueError(f"expected a plain column name (letters, digits and _), got {value!r}")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> MigrateColumns:
        seen: dict[str, str] = {}
        for notion in ("version", "name", "applied_at", "checksum"):
            column = getattr(self, notion)
            if column is None:
                continue
            if column.lower() in seen:
                raise ValueError(f"column {column!r} is mapped twice ({seen[column.lower()]} and {notion});"
                                 " map each to its own column")
            seen[column.lower()] = notion
        return self


class DjangoMigrate(Spec):
    """`manage.py migrate` of a Django project, run with the release's own interpreter and code."""

    render_with_parent: ClassVar[bool] = True  # its templates render with the step (templater.render_config)

    manage: str = Field(description="The project's manage.py, relative to the runbook (commands run in its folder).")
    python: str | None = Field(None, description=(
        "The release's interpreter (its virtualenv's python), relative to the runbook or a name on PATH"
        " (default: python3 on the step's PATH)."))
    settings: str | None = Field(None, description="DJANGO_SETTINGS_MODULE (default: what manage.py sets).")
    apps: list[str] | None = Field(None, description="Migrate only these apps, each to its latest migration.")
    targets: dict[str, str] | None = Field(None, description=(
        "Migrate each app to exactly this migration (a name, a unique prefix, or zero), forwards or"
        " backwards; the automatic revert is written so."))
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables (DATABASE_URL...).")
    allow_irreversible: bool = Field(False, description=(
        "Apply migrations that cannot be unapplied (RunPython without reverse_code, RunSQL without"
        " reverse_sql): refused by default, since the step's revert would fail."))

    @model_validator(mode="after")
    def _apps_or_targets(self) -> DjangoMigrate:
        if self.apps is not None and self.targets is not None:
            raise ValueError("give 'apps' (each to its latest) or 'targets' (each to a named migration), not both")
        for app in [*(self.apps or []), *(self.targets or {})]:
            if not _COLUMN.match(app):
                raise ValueError(f"expected a Django app label (letters, digits and _), got {app!r}")
        return self


class MigrateSpec(Spec):
    """Apply ordered SQL migrations (NNNN_name.sql, optional .down.sql and .verify.sql) tracked in a
    table, or drive an Alembic configuration or a Django project. Outputs: before, after, applied."""

    url: str = Field(description="SQLAlchemy URL of the database to migrate.")
    dir: str | None = Field(None, description="Directory of NNNN_name.sql files, relative to the runbook.")
    alembic: str | None = Field(None, description="Path to an alembic.ini (instead of dir).")
    django: DjangoMigrate | None = Field(None, description=(
        "A Django project's manage.py migrate (instead of dir); `url` is the database its"
        " django_migrations table is in."))
    to: str | None = Field(None, description="Target version (default: the latest).")
    revert_to: str | None = Field(None, description="Revert down to this version instead of applying.")
    table: str = Field("schema_migrations", description="Tracking table.")
    columns: MigrateColumns | None = Field(None, description=(
        "Adopt `table`, an existing migrations table of another shape: which of its columns hold the "
        "version, name, applied_at and checksum."))
    lock_timeout: Duration = Field(5.0, description="PostgreSQL lock_timeout for each statement.")
    statement_timeout: Duration | None = Field(None, description="PostgreSQL statement_timeout.")
    lock_retries: int = Field(3, ge=0, description="Retries of a statement that lost a lock wait.")
    lock_wait: Duration = Field(60.0, description="How long to wait for another migrator's advisory lock.")
    dry_run: bool = Field(False, description="Show what would run; change nothing.")
    schema_before: str | None = Field(None, description=(
        "Set by tminus on the automatic revert of an Alembic step: the schema recorded before the upgrade,"
        " which the downgrade is proven against."))

    @model_validator(mode="after")
    def _one_source(self) -> MigrateSpec:
        if [self.dir, self.alembic, self.django].count(None) != 2:
            raise ValueError("give exactly one of 'dir', 'alembic' or 'django'")
        if self.django is not None:
            given = [k for k in ("to", "revert_to", "columns", "schema_before") if getattr(self, k) is not None]
            if given:
                verb = "does" if len(given) == 1 else "do"
                raise ValueError(f"{', '.join(map(repr, given))} {verb} not apply to 'django': name each app's"
                                 " migration in django.targets, e.g. targets: {blog: 0002_post_slug} (zero: none)")
        if self.columns is not None and self.alembic is not None:
            raise ValueError("'columns' adopts a table for 'dir' migrations; Alembic keeps its own"
                             " alembic_version table: remove 'columns'")
        return self


class BackupSpec(Spec):
    """Back up a database (pg_dump custom format, or SQLite's online backup), checksum it, check it is
    readable, optionally restore it into a scratch database (drill). Outputs: path, sha256, bytes."""

    url: str
    dir: str = Field(description="Where backups go, relative to the runbook.")
    keep: int | None = Field(None, ge=1, description="Keep this many backups; never the newest verified.")
    drill: bool = Field(False, description="Restore into a scratch database and check it there.")
    label: str | None = Field(None, description="Name part of the file (default: the run's environment).")


class RestoreSpec(Spec):
    """Restore a backup made by `backup` after checking its checksum; all or nothing."""

    url: str
    file: str = Field(description="The backup file, e.g. '{{ steps.backup.path }}'.")
    sha256: str | None = Field(None, description="Expected checksum (default: the .sha256 file beside it).")
    maintenance: bool = Field(False, description=(
        "The service took no writes since the backup (maintenance mode around the change): whatever "
        "differs from the backup is the run's own doing, so the restore discards it without asking."))
    accept_loss: str | None = Field(None, description=(
        "Why writes made since the backup may be discarded without asking the operator; recorded with "
        "what was discarded."))
    run_tables: list[str] = Field(default_factory=list, description=(
        "Tables only the run itself writes, whose changes since the backup are expected (besides the "
        "migration-history tables always taken as the run's own: alembic_version, schema_version, "
        "schema_migrations and its _log/_progress/_lock, flyway_schema_history, django_migrations, and the"
        " tminus_* side tables of an adopted one)."))


class FingerprintSpec(Spec):
    """Schema objects by kind, and per table the row count and an order-independent content checksum.
    Outputs: fingerprint, digests (and diff with compare_to). With `compare_to`, fails naming each
    difference from that fingerprint."""

    url: str
    tables: list[str] | None = Field(None, description="Tables to include (default: all user tables).")
    include_tminus: bool = Field(False, description="Include tminus's own tables (migration tracking, ledger).")
    compare_to: Any = Field(None, description="A fingerprint to compare with, e.g. '{{ steps.before.fingerprint }}'.")


class MigrationLintSpec(Spec):
    """Flag risky migration statements (long locks, table rewrites, breaking changes)."""

    dir: str = Field(description="Directory of migration files, relative to the runbook.")
    ignore: list[str] = Field(default_factory=list, description="Rule ids to ignore.")


class NotifySpec(Spec):
    """An announcement to a webhook (maintenance starting, cutover done, rollback begun).

    The message may use run facts: {{ run.t_plus }}, {{ run.environment }}, {{ vars.version }}.
    Outputs: status, attempts."""

    message: str
    channel: str | None = Field(None, description="A channel defined under `channels:`.")
    url: str | None = Field(None, description="A webhook URL, when no channel is named.")

    @model_validator(mode="after")
    def _one_target(self) -> NotifySpec:
        if (self.channel is None) == (self.url is None):
            raise ValueError("give exactly one of 'channel' (a name under channels:) or 'url'")
        return self


class PrometheusSpec(Spec):
    """An instant query through Prometheus' HTTP API (/api/v1/query). Values: `value` (the first
    series' number, or the scalar), `series` (every series: labels and value), `json`."""

    url: str = Field(description="The Prometheus server, e.g. http://127.0.0.1:9090.")
    query: str = Field(description='PromQL, e.g. sum(rate(http_requests_total{code=~"5.."}[5m])).')
    headers: dict[str, str] = Field(default_factory=dict)


class RedisSpec(Spec):
    """One read-only Redis command (LLEN jobs, GET key, PING, ...). Values: `value` (the reply),
    `json` (a text reply that is JSON), `duration`."""

    url: str = Field(description="redis://[:password@]host:port/db, rediss:// or unix:// (redis-py's URL forms).")
    command: str = Field(description="A read-only command and its arguments, e.g. 'LLEN jobs'; quote an "
                                     "argument holding spaces: GET 'a key'.")


class DocsSpec(Spec):
    """The committed Markdown page of a runbook (`tminus docs`) is current: the page is rendered
    again (`tminus docs RUNBOOK -e ENV --check FILE` in a subprocess) and compared with the file."""

    file: str = Field(description="The committed page, relative to the runbook's folder.")
    runbook: str | None = Field(None, description=(
        "The runbook the page renders, relative to the runbook's folder (default: the runbook being run)."))
    environment: str | None = Field(None, description="The environment it renders for (default: the run's).")
    vars: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="`--var` overrides the page was rendered with (default: none).")


# The kinds a step may name, in the order the docs list them. Adding a kind: add its spec
# model here and a module under tminus/kinds registering its descriptor for the same name.
KIND_FIELDS: tuple[str, ...] = (
    "run", "http", "sql", "file", "tcp", "env", "wait", "manual",
    "migrate", "backup", "restore", "fingerprint", "migration_lint", "notify", "prometheus", "redis",
    "proxy", "service", "watch", "docs",
)


class Step(Spec):
    """One step: common fields plus exactly one kind key."""

    name: str | None = Field(None, description="What the step does, in words.")
    id: Identifier | None = Field(None, description="Refer to outputs as steps.<id>.<output>.")
    timeout: Duration | None = Field(None, description="Kill the step after this long.")
    retry: Retry | None = None
    when: str | None = Field(None, description="A Jinja2 expression; the step is skipped when false.")
    on_failure: OnFailure | None = Field(
        None, description="rollback (default in phases; notify steps: continue), abort (stop, no undo), or continue."
    )
    idempotent: bool | None = Field(None, description="Safe to run again after a crash (checks are).")
    expect: list[str] | None = Field(None, description="Expectations, e.g. 'status == 200'.")
    undo: list[Step] | None = Field(None, description="Steps that reverse this one.")
    after_rollback: bool = Field(True, description="Verify checks only: run again after a rollback.")
    secret_output: bool = Field(False, description="Mask this step's outputs everywhere.")
    declared_effect: EffectClass | None = Field(None, alias="effect", description=(
        "What the step does to the world, overriding its kind's class for the point of no return: "
        "none (read-only), additive (adds, nothing to undo), reversible (has an undo), irreversible."))

    run: RunSpec | None = None
    http: HttpSpec | None = None
    sql: SqlSpec | None = None
    file: FileSpec | None = None
    tcp: TcpSpec | None = None
    env: EnvSpec | None = None
    wait: WaitSpec | None = None
    manual: ManualSpec | None = None
    migrate: MigrateSpec | None = None
    backup: BackupSpec | None = None
    restore: RestoreSpec | None = None
    fingerprint: FingerprintSpec | None = None
    migration_lint: MigrationLintSpec | None = None
    notify: NotifySpec | None = None
    prometheus: PrometheusSpec | None = None
    redis: RedisSpec | None = None
    proxy: ProxySpec | None = None
    service: ServiceSpec | None = None
    watch: WatchSpec | None = None
    docs: DocsSpec | None = None

    # Set by the loader after validation: the step's place in the runbook.
    _key: str = PrivateAttr("")
    _path: tuple[str | int, ...] = PrivateAttr(())

    @model_validator(mode="before")
    @classmethod
    def _exactly_one_kind(cls, data: Any) -> Any:
        if isinstance(data, dict):
            kinds = [k for k in KIND_FIELDS if k in data]
            if not kinds:
                raise ValueError(
                    "a step needs exactly one kind key: " + ", ".join(KIND_FIELDS)
                )
            if len(kinds) > 1:
                raise ValueError(f"a step has exactly one kind key, found {len(kinds)}: {', '.join(kinds)}")
            if data[kinds[0]] is None:  # `manual:` with nothing after it: a step without a kind
                raise ValueError(f"the kind key '{kinds[0]}' has no value")
        return data

    @property
    def kind(self) -> str:
        for k in KIND_FIELDS:
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated step without a kind")

    @property
    def effect(self) -> Effect:
        """What the step does to the world: its `effect:` key, or what its kind declares for this
        configuration: none, reversible, additive or irreversible (a str enum)."""
        from tminus.kinds.registry import effect_of

        return effect_of(self)

    @property
    def kind_effect(self) -> Effect:
        """The class the step's kind gives it, whatever the step declares."""
        from tminus.kinds.registry import kind_effect_of

        return kind_effect_of(self)

    @property
    def is_check(self) -> bool:
        """A check has no side effects: safe to repeat after a crash, needs no undo."""
        return self.effect == "none"

    @property
    def needs_undo(self) -> bool:
        """Whether a rollback must reverse this step with the runbook's `undo`: not checks, not
        additive steps (a backup adds a file and changes nothing; a notification cannot be unsent),
        not reversible ones (`migrate` derives its own revert)."""
        return self.effect == "irreversible"

    @property
    def failure_policy(self) -> str:
        """`on_failure`, or its kind's default: a failed announcement (`notify`) must not roll back a
        cutover or stop a rollback because the chat is down, so it continues; every other step rolls back."""
        if self.on_failure is not None:
            return self.on_failure
        from tminus.kinds.registry import default_on_failure

        return default_on_failure(self.kind)

    @property
    def config(self) -> Spec:
        cfg = getattr(self, self.kind)
        assert isinstance(cfg, Spec)
        return cfg

    @property
    def key(self) -> str:
        """Stable address of the step in the runbook, e.g. `phase:migrate/2` or `gate:build/0`."""
        return self._key

    @property
    def path(self) -> tuple[str | int, ...]:
        return self._path

    @property
    def title(self) -> str:
        if self.name or self.id:
            return str(self.name or self.id)
        if self.manual is not None:  # an unnamed confirmation is known by what it asks
            first = self.manual.prompt.strip().split("\n", 1)[0]
            return first if len(first) <= 80 else first[:79] + "…"
        return f"{self.kind} step"


WaitSpec.model_rebuild()
WatchSpec.model_rebuild()


ServicePrevious.model_rebuild(_types_namespace={"Step": Step})
ServiceSpec.model_rebuild(_types_namespace={"Step": Step, "ServicePrevious": ServicePrevious})


def nested_checks(step: Step) -> list[tuple[Step, tuple[str | int, ...]]]:
    """The checks inside a step that run as part of it (a wait's check, a service's health checks),
    each with its path below the step."""
    out: list[tuple[Step, tuple[str | int, ...]]] = []
    if step.wait is not None:
        out.append((step.wait.check, ("wait", "check")))
    if step.service is not None:
        if step.service.health is not None:
            out.append((step.service.health, ("service", "health")))
        previous = step.service.previous
        if previous is not None and previous.health is not None:
            out.append((previous.health, ("service", "previous", "health")))
    if step.watch is not None:  # a watch's probes see what the watch step sees
        out += [(probe, ("watch", "probes", i)) for i, probe in enumerate(step.watch.probes)]
    return out


class Gate(Spec):
    """A named group of checks; every gate must pass before anything changes."""

    name: str
    description: str | None = None
    stage: Stage | None = Field(None, description=(
        "Run before the day, on its own (`tminus gate --stage T-48h`): T- and a duration before `at`."))
    checks: list[Step] = Field(min_length=1)


DeadlineAction = Literal["notify", "pause", "rollback"]
_ACTION = ("What exceeding it does, besides recording it and telling the `notify` channels: notify (only "
           "tell), pause (ask the operator: go on or roll back), rollback.")


class Deadline(Spec):
    """A time limit on a phase: exceeding it is an alert, recorded, with the action it names."""

    after: Duration = Field(description="How long the phase may take, from its first start.")
    action: DeadlineAction = Field("notify", description=_ACTION)
    notify: list[str] = Field(default_factory=list, description="Channels told when it is exceeded.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"after": data} if isinstance(data, str | int | float) and not isinstance(data, bool) else data


class GuardSpec(Spec):
    """Probes and alert rules (the monitor's grammar) that run while a phase's steps run: from
    before its first step until its last step finished (and `settle` after). A rule that fires
    stops the current step and takes its action: rollback (default), abort or notify."""

    interval: Duration = Field(description="Time between two probes of each probe.")
    settle: Duration | None = Field(
        None, description="Keep probing this long after the phase's last step, before the next section."
    )
    notify: list[str] = Field(default_factory=list, description="Channels told of every firing and resolution.")
    probes: list[Step] = Field(min_length=1, description="Named checks whose values the rules read.")
    rules: list[AlertRule] = Field(min_length=1, description="When the guard fires, and what it does then.")


class Phase(Spec):
    """Steps performed in order, with undo steps that reverse the phase."""

    name: str
    id: Identifier | None = None
    description: str | None = None
    budget: Duration | None = Field(None, description="Planned duration; the T+ timeline adds these up.")
    deadline: Deadline | None = Field(None, description="A duration, or {after, action, notify}.")
    steps: list[Step] = Field(min_length=1)
    undo: list[Step] = Field(default_factory=list, description="Run in order when the phase is rolled back.")
    guard: GuardSpec | None = Field(None, description="Probes and rules watched while the phase's steps run.")


class AfterGoPhase(Phase):
    """A phase run right after the go decision, before the monitor window: the cutover is live."""

    on_failure: Literal["stop", "rollback"] = Field("stop", description=(
        "stop (default): the run stops, the cutover stays live, `tminus resume` finishes what is not "
        "done; rollback: take the undo path (this phase's done steps are undone too)."))


class EnvManifest(Spec):
    """Environment variables an environment requires, and values it forbids."""

    required: list[str] = Field(default_factory=list)
    forbidden: dict[str, str | list[str]] = Field(
        default_factory=dict, description="NAME: value (or list of values) that must not be set."
    )


class Environment(Spec):
    """Per-environment overrides."""

    description: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    vars_file: str | None = Field(None, description=(
        "A YAML or JSON file of variable values, relative to the runbook; this environment's vars: win over it."))
    env: EnvManifest = Field(default_factory=EnvManifest)
    requires: list[Requirement] = Field(default_factory=list, description=(
        "Runs that must be in the ledger before a run in this environment changes anything (beside the "
        "runbook's own requires:), e.g. production requires a completed staging run."))


class Decision(Spec):
    """Go/no-go after verify: `auto` decides from the checks, `manual` asks an operator."""

    mode: Literal["auto", "manual"] = "auto"
    timeout: Duration | None = Field(None, description="manual: silence for this long means no-go.")
    prompt: str | None = None
    require_second_person: bool = Field(
        False, description="manual: the approver must not be the operator who started the run."
    )
    require_rehearsal: RehearsalRequirement | None = Field(None, description=(
        "{environment, within, max_rto, all_phases}: a passing `tminus rehearse` of this runbook's content "
        "must be in the ledger before a run in another environment changes anything."))

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"mode": data} if isinstance(data, str) else data


class MonitorSpec(Spec):
    """The watch after the go decision: probes every `interval` for `duration`, alert rules over them."""

    duration: Duration = Field(description="How long to watch after the decision.")
    interval: Duration = Field(description="Time between two probes of each probe.")
    baseline: Duration | None = Field(
        None, description="Probe this long before the first phase, so ratio rules have a baseline."
    )
    pause_timeout: Duration | None = Field(
        None, description="A paused monitor (pause action, inconclusive rule) waits this long for an answer."
    )
    notify: list[str] = Field(default_factory=list, description="Channels told of every firing and resolution.")
    probes: list[Step] = Field(min_length=1, description="Named checks whose values the rules read.")
    rules: list[AlertRule] = Field(default_factory=list)


class RollbackSpec(Spec):
    """The rollback steps (a list), or a mapping with them and a deadline on the whole undo path."""

    steps: list[Step] = Field(default_factory=list, description="Run after the undo steps.")
    deadline: Duration | None = Field(None, description="How long the rollback may take, from its start.")
    action: DeadlineAction = Field("notify", description="notify or pause: a rollback cannot roll back again.")
    notify: list[str] = Field(default_factory=list, description="Channels told when the deadline is exceeded.")
    _listed: bool = PrivateAttr(False)  # written as a list: its steps' paths are rollback[i]

    @model_validator(mode="wrap")
    @classmethod
    def _list(cls, data: Any, handler: Any) -> Any:
        if isinstance(data, list):
            spec = handler({"steps": data})
            spec._listed = True
            return spec
        return handler(data)

    @property
    def base(self) -> tuple[str, ...]:
        """Where its steps are in the document."""
        return ("rollback",) if self._listed else ("rollback", "steps")


class Downtime(Spec):
    """The run's downtime: from the start of one step or phase to the end of another, with a deadline."""

    from_: str = Field(alias="from", description="The id of the step or phase whose start begins it.")
    to: str = Field(description="The id of the step or phase whose end ends it.")
    deadline: Duration = Field(description="How long the downtime may last.")
    action: DeadlineAction = Field("notify", description=_ACTION)
    notify: list[str] = Field(default_factory=list, description="Channels told when it is exceeded.")


class KillSwitch(Spec):
    """`kill_switch:`: the steps that restore the old path at any time (`tminus kill-switch`), timed."""

    target: Duration = Field(description="How long the kill switch may take; a slower one exits 17.")
    steps: list[Step] = Field(min_length=1, description=(
        "Run in order, without gates; the first failure stops it (nothing is undone)."))


class Runbook(Spec):
    """A runbook, version 1."""

    version: Literal[1] = 1
    name: str
    description: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    vars_file: str | None = Field(None, description=(
        "A YAML or JSON file declaring variables, relative to the runbook; vars: win over it."))
    secrets: list[str] = Field(
        default_factory=list, description="Environment variables whose values are masked."
    )
    environments: dict[str, Environment] = Field(default_factory=dict)
    roots: list[str] = Field(
        default_factory=list,
        description="Folders besides the runbook's own that file paths, cwd and SQLite paths may lie in.",
    )
    at: CutoverTime | None = Field(None, description="The cutover time (T+0) the stages count back from.")
    requires: list[Requirement] = Field(
        default_factory=list, description="Runs that must be in the ledger before anything changes.")
    require_stages: bool = Field(
        False, description="Block the run when a stage did not pass within its window (default: shown only).")
    gates: list[Gate] = Field(default_factory=list)
    phases: list[Phase] = Field(default_factory=list)
    verify: list[Step] = Field(default_factory=list)
    decision: Decision = Field(default_factory=lambda: Decision())
    rollback: RollbackSpec = Field(default_factory=lambda: RollbackSpec(),
                                   description="Steps run after the undo steps, or {steps, deadline, action}.")
    downtime: Downtime | None = Field(None, description="{from, to, deadline, action}: a deadline on the outage.")
    after_go: list[AfterGoPhase] = Field(default_factory=list, description=(
        "Phases run right after the go decision, before the monitor window."))
    finalize: list[Phase] = Field(default_factory=list, description=(
        "Phases run once the decision is go and the monitor window has passed; their failure does not "
        "roll back the cutover: the run ends not finalized and `tminus resume` finishes them."))
    channels: dict[str, Channel] = Field(default_factory=dict, description="Notification webhooks by name.")
    monitor: MonitorSpec | None = None
    kill_switch: KillSwitch | None = Field(None, description=(
        "{target, steps}: what restores the old path at any time, run by `tminus kill-switch`."))
    release: str | None = Field(None, description=(
        "What this run makes live, e.g. \"{{ vars.release }}\": rendered when the run starts and recorded; "
        "`tminus releases` lists what is live per environment."))

    @property
    def live_phases(self) -> list[Phase]:
        """The phases after the go decision, in the order they run: after_go, then finalize."""
        return [*self.after_go, *self.finalize]

    def requirements(self, environment: str) -> list[tuple[str, Requirement]]:
        """The runbook's `requires:` and then the environment's, each with where it is written."""
        out = [(f"requires[{i}]", r) for i, r in enumerate(self.requires)]
        env = self.environments.get(environment)
        if env is not None:
            out += [(f"environments.{environment}.requires[{i}]", r) for i, r in enumerate(env.requires)]
        return out

    def all_steps(self) -> list[Step]:
        """Every step in document order, nested undo and wait checks included."""
        out: list[Step] = []

        def visit(steps: list[Step]) -> None:
            for s in steps:
                out.append(s)
                visit([nested for nested, _ in nested_checks(s)])
                if s.undo:
                    visit(s.undo)

        for g in self.gates:
            visit(g.checks)
        for p in self.phases:
            if p.guard is not None:
                visit(p.guard.probes)
            visit(p.steps)
            visit(p.undo)
        visit(self.verify)
        for p in self.live_phases:
            visit(p.steps)
            visit(p.undo)
        visit(self.rollback.steps)
        if self.monitor is not None:
            visit(self.monitor.probes)
        if self.kill_switch is not None:
            visit(self.kill_switch.steps)
        return out
