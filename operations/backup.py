"""Whole-site backups as JSON lines: `manage.py export_all` / `import_all`.

File layout, one JSON object per line:
  1. header  {"format": "flightdeck-export", "version": 1, "migrations": [...], "models": [...]}
  2. records {"model": "ideas.idea", "pk": 42, "fields": {"title": ..., "area": 3, ...}}, model by model in
     dependency order (a model after every model it points to), rows by primary key
  3. trailer {"counts": {"ideas.idea": 61, ...}}
Every model in the app registry is exported, auto-created many-to-many tables included, except those in
`EXCLUDED` (each with the reason), so a model added later is backed up without anyone remembering to.
Foreign keys to content types and permissions, which `migrate` recreates with ids of its own, are written as
natural keys. Writing and reading both stream: memory stays flat with millions of metric rows.
"""
import datetime
import decimal
import gzip
import io
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.apps import apps
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils.duration import duration_iso_string

FORMAT = "flightdeck-export"
VERSION = 1
BATCH_SIZE = 2000

# label → why it is not in a backup. A test fails when a model is neither exported nor listed here.
EXCLUDED: dict[str, str] = {
    "sessions.session": "sign-ins do not survive a restore (the table is emptied by import_all --force)",
    "contenttypes.contenttype": "recreated by migrate; references to it are written as natural keys",
    "auth.permission": "recreated by migrate; references to it are written as natural keys",
    "operations.heartbeat": "liveness of the processes of one installation, rewritten within seconds",
}
# Tables import_all --force empties without restoring them.
CLEARED_ON_FORCE: tuple[str, ...] = ("sessions.session",)
# Referenced by natural key, because their ids differ between two databases migrated separately.
NATURAL_KEY_MODELS: tuple[type[models.Model], ...] = (ContentType, Permission)


class BackupError(Exception):
    """A backup cannot be written or restored; the message says why and what to do."""


def exported_models() -> list[type[models.Model]]:
    """Every concrete model with a table of its own, minus EXCLUDED, in dependency order."""
    candidates = {
        model._meta.label_lower: model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy and model._meta.label_lower not in EXCLUDED
    }
    return _dependency_order(candidates)


def _dependency_order(by_label: dict[str, type[models.Model]]) -> list[type[models.Model]]:
    """Models after the models their foreign keys point to; deterministic (ties broken by label).

    A cycle is broken at its smallest label: PostgreSQL and SQLite check Django's foreign keys at commit
    (DEFERRABLE INITIALLY DEFERRED), and the import is one transaction, so the order inside a cycle is free.
    """
    needs = {
        label: {
            field.related_model._meta.label_lower
            for field in model._meta.local_concrete_fields
            if field.is_relation and field.related_model._meta.label_lower in by_label
        } - {label}
        for label, model in by_label.items()
    }
    ordered: list[str] = []
    while needs:
        ready = sorted(label for label, deps in needs.items() if not deps) or [min(needs)]
        for label in ready:
            ordered.append(label)
            del needs[label]
        for deps in needs.values():
            deps.difference_update(ready)
    return [by_label[label] for label in ordered]


def _fields(model: type[models.Model]) -> list[models.Field]:
    # Local columns only: a multi-table child's inherited columns are in its parent's rows.
    return list(model._meta.local_concrete_fields)


def _natural_key_target(field: models.Field) -> type[models.Model] | None:
    if field.is_relation and field.related_model in NATURAL_KEY_MODELS:
        return field.related_model
    return None


def _encode(value: Any) -> Any:
    """JSON for the values Django columns hold. Unlike DjangoJSONEncoder, datetimes keep their microseconds."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return duration_iso_string(value)
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    raise TypeError(f"cannot write a {type(value).__name__} to a backup")


def _dumps(obj: Any) -> str:
    # allow_nan: a float column may hold NaN or infinity; they come back as written. ensure_ascii: text the
    # database took that is not valid Unicode (a lone surrogate) is written as a \\udXXX escape, so the file
    # stays UTF-8 and the value comes back exactly.
    return json.dumps(obj, default=_encode, ensure_ascii=True, separators=(",", ":"), allow_nan=True)


def _applied_migrations(using: str) -> list[str]:
    return sorted(f"{app}.{name}" for app, name in MigrationRecorder(connections[using]).applied_migrations())


@dataclass
class ExportResult:
    path: Path
    counts: dict[str, int]


def _open_for_writing(path: Path, *, compress: bool) -> IO[str]:
    if compress:
        # mtime 0 and no file name in the gzip header: the same data gives the same bytes.
        raw = path.open("wb")
        return io.TextIOWrapper(gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0), encoding="utf-8")
    return path.open("w", encoding="utf-8")


def _open_for_reading(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return path.open("r", encoding="utf-8")


def resolve_export_path(target: Path, *, now: datetime.datetime) -> Path:
    """A directory gets a time-stamped file inside it; anything else is the file itself."""
    if target.is_dir():
        return target / f"flightdeck-{now:%Y%m%dT%H%M%SZ}.jsonl.gz"
    return target


def _records(model: type[models.Model], using: str) -> Iterator[tuple[Any, dict[str, Any]]]:
    fields = _fields(model)
    natural = {
        index: {obj.pk: list(obj.natural_key()) for obj in target._default_manager.using(using).all()}
        for index, field in enumerate(fields) if (target := _natural_key_target(field))
    }
    pk_index = next(index for index, field in enumerate(fields) if field.primary_key)
    rows = (model._base_manager.using(using).order_by("pk")
            .values_list(*(field.attname for field in fields)).iterator(chunk_size=BATCH_SIZE))
    for row in rows:
        values = {}
        for index, field in enumerate(fields):
            if index == pk_index:
                continue
            value = row[index]
            if index in natural and value is not None:
                value = natural[index][value]
            values[field.name] = value
        yield row[pk_index], values


def export_all(target: Path, *, using: str = DEFAULT_DB_ALIAS, now: datetime.datetime | None = None) -> ExportResult:
    """Write every exported model to `target` (a file, or a directory for a time-stamped file in it).

    Reads in one repeatable-read transaction on PostgreSQL, so the backup is one consistent snapshot even
    while workers write metrics. Written to a temporary name and renamed: a half-written backup never looks
    like a complete one.
    """
    path = resolve_export_path(Path(target), now=now or datetime.datetime.now(datetime.UTC))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    model_list = exported_models()
    counts: dict[str, int] = {}
    connection = connections[using]
    snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
    try:
        with transaction.atomic(using=using), _open_for_writing(partial, compress=path.suffix == ".gz") as out:
            if snapshot:  # must be the transaction's first statement
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            out.write(_dumps({"format": FORMAT, "version": VERSION, "migrations": _applied_migrations(using),
                              "models": [model._meta.label_lower for model in model_list]}) + "\n")
            for model in model_list:
                label = model._meta.label_lower
                counts[label] = 0
                for pk, fields in _records(model, using):
                    out.write(_dumps({"model": label, "pk": pk, "fields": fields}) + "\n")
                    counts[label] += 1
            out.write(_dumps({"counts": counts}) + "\n")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return ExportResult(path=path, counts=counts)


def _existing_rows(model_list: Iterable[type[models.Model]], using: str) -> dict[str, int]:
    found = {}
    for model in model_list:
        if model._base_manager.using(using).exists():
            found[model._meta.label_lower] = model._base_manager.using(using).count()
    return found


def _clear(model_list: list[type[models.Model]], using: str) -> None:
    connection = connections[using]
    labels = [*(model._meta.label_lower for model in model_list), *CLEARED_ON_FORCE]
    tables = [apps.get_model(label)._meta.db_table for label in labels]
    with connection.cursor() as cursor:
        for statement in connection.ops.sql_flush(no_style(), tables, reset_sequences=False):
            cursor.execute(statement)


class _Decoder:
    """Turns a record's fields back into model attributes, resolving natural keys once per key."""

    def __init__(self, model: type[models.Model], using: str) -> None:
        self.model = model
        self.label = model._meta.label_lower
        self.fields = _fields(model)
        self.by_name = {field.name: field for field in self.fields if not field.primary_key}
        self.pk_field = model._meta.pk
        self.using = using
        self._natural: dict[tuple, Any] = {}

    def instance(self, record: dict, line: int) -> models.Model:
        given = record["fields"]
        if unknown := sorted(set(given) - set(self.by_name)):
            raise BackupError(f"line {line}: {self.label} has no field {unknown[0]!r}; was the backup taken at "
                              f"another schema version?")
        if missing := sorted(set(self.by_name) - set(given)):
            raise BackupError(f"line {line}: {self.label} record lacks field {missing[0]!r}")
        values = {self.pk_field.attname: self.pk_field.to_python(record["pk"])}
        for name, value in given.items():
            field = self.by_name[name]
            if value is not None and (target := _natural_key_target(field)):
                value = self._resolve(target, value, line)
            values[field.attname] = None if value is None else field.to_python(value)
        return self.model(**values)

    def _resolve(self, target: type[models.Model], key: list, line: int) -> Any:
        cache_key = (target, tuple(key))
        if cache_key not in self._natural:
            try:
                self._natural[cache_key] = target._default_manager.db_manager(self.using).get_by_natural_key(*key).pk
            except target.DoesNotExist:
                raise BackupError(f"line {line}: {target._meta.label_lower} {key} does not exist here; "
                                  f"run migrate first") from None
        return self._natural[cache_key]


def _insert(model: type[models.Model], objs: list[models.Model], using: str) -> None:
    # QuerySet._insert with raw=True is what loaddata's save_base(raw=True) uses: unlike bulk_create it does not
    # call pre_save, which would overwrite every auto_now_add timestamp with the time of the restore.
    fields = _fields(model)
    batch = connections[using].ops.bulk_batch_size(fields, objs) or len(objs)
    for start in range(0, len(objs), batch):
        model._base_manager.using(using)._insert(objs[start:start + batch], fields=fields, raw=True, using=using)


@dataclass
class ImportResult:
    counts: dict[str, int]


def import_all(source: Path, *, using: str = DEFAULT_DB_ALIAS, force: bool = False,
               progress: Callable[[str, int], None] | None = None) -> ImportResult:
    """Restore a backup into this database in one transaction; on any error nothing is changed.

    Refuses a database that holds data unless `force` (which empties the exported tables and sessions first)
    and a backup taken at other migrations. Resets the id sequences afterwards and checks every count.
    """
    model_list = exported_models()
    by_label = {model._meta.label_lower: model for model in model_list}
    connection = connections[using]
    with _open_for_reading(Path(source)) as lines, transaction.atomic(using=using):
        header = _parse(next(lines, ""), 1)
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise BackupError(f"{source} is not a {FORMAT} version {VERSION} file")
        _check_same_schema(header, using)
        if existing := _existing_rows(model_list, using):
            if not force:
                sample = ", ".join(f"{label} ({n})" for label, n in list(existing.items())[:3])
                raise BackupError(f"the database is not empty ({sample}, ...); import_all restores into an empty "
                                  f"database only: run it on a freshly migrated one, or pass --force to delete "
                                  f"the current data first")
            _clear(model_list, using)
        ContentType.objects.clear_cache()  # ids may have changed since this process last looked
        imported: dict[str, int] = dict.fromkeys(by_label, 0)
        decoder: _Decoder | None = None
        pending: list[models.Model] = []
        trailer = None
        for number, text in enumerate(lines, start=2):
            record = _parse(text, number)
            if "counts" in record:
                trailer = record["counts"]
                continue
            if trailer is not None:
                raise BackupError(f"line {number}: records after the trailer")
            label = record.get("model")
            if decoder is None or decoder.label != label:
                if decoder is not None:
                    _insert(decoder.model, pending, using)
                    pending = []
                if label not in by_label:
                    raise BackupError(f"line {number}: unknown or excluded model {label!r}")
                decoder = _Decoder(by_label[label], using)
            pending.append(decoder.instance(record, number))
            imported[label] += 1
            if len(pending) >= BATCH_SIZE:
                _insert(decoder.model, pending, using)
                pending = []
                if progress:
                    progress(label, imported[label])
        if decoder is not None and pending:
            _insert(decoder.model, pending, using)
        if trailer is None:
            raise BackupError(f"{source} ends without its trailer line: the backup is incomplete")
        _reset_sequences(model_list, using)
        _verify_counts(trailer, imported, by_label, using)
    return ImportResult(counts=imported)


def _parse(text: str, line: int) -> dict:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise BackupError(f"line {line} is not JSON: {error.msg}") from None
    if not isinstance(record, dict):
        raise BackupError(f"line {line} is not a JSON object")
    return record


def _check_same_schema(header: dict, using: str) -> None:
    theirs, ours = set(header.get("migrations", [])), set(_applied_migrations(using))
    if theirs != ours:
        only_file = sorted(theirs - ours)[:3]
        only_db = sorted(ours - theirs)[:3]
        raise BackupError(f"the backup was taken at other migrations (only in the backup: {only_file or '-'}; "
                          f"only here: {only_db or '-'}); migrate this database to the backup's migrations, "
                          f"import, then migrate forward")


def _reset_sequences(model_list: list[type[models.Model]], using: str) -> None:
    """What `manage.py sqlsequencereset` prints: move each id sequence past the largest restored id."""
    connection = connections[using]
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), model_list):
            cursor.execute(statement)


def _verify_counts(expected: dict[str, int], imported: dict[str, int], by_label: dict, using: str) -> None:
    if unknown := sorted(set(expected) - set(by_label)):
        raise BackupError(f"the backup holds {unknown[0]}, which this version does not restore")
    for label, model in by_label.items():
        want = expected.get(label, 0)
        have = model._base_manager.using(using).count()
        if not (want == imported[label] == have):
            raise BackupError(f"count mismatch for {label}: the trailer says {want}, the file held "
                              f"{imported[label]}, the database now has {have}")
