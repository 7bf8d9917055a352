#!/usr/bin/env python3
"""Validate an OpenLineage RunEvent offline against vendored JSON schemas.

usage: python3 validate_openlineage.py EVENT.json SPEC_DIR [CUSTOM_FACET_SCHEMA ...]

Every *.json under SPEC_DIR (and each CUSTOM_FACET_SCHEMA) is registered under its
"$id"; no $ref is ever fetched over the network. Checks:
  * the event against the core schema's #/$defs/RunEvent (formats uuid, date-time,
    uri are asserted, not just annotated);
  * the event's schemaURL names that same core schema;
  * every run/job/dataset facet against the schema its _schemaURL points to, which
    must be one of the loaded files, under the key that file defines for it.
Exit 0 if valid, 1 with the errors if not, 2 on usage/loading errors.
"""

import datetime
import json
import re
import sys
import urllib.parse
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DATE_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


def format_checker() -> FormatChecker:
    # Own checks so format assertion does not depend on optional jsonschema extras.
    fc = FormatChecker(formats=())

    @fc.checks("uuid")
    def _uuid(v):
        return not isinstance(v, str) or bool(UUID_RE.match(v))

    @fc.checks("date-time")
    def _date_time(v):
        if not isinstance(v, str):
            return True
        if not DATE_TIME_RE.match(v):
            return False
        try:
            datetime.datetime.fromisoformat(v.replace("z", "Z").replace("t", "T"))
        except ValueError:
            return False
        return True

    @fc.checks("uri")
    def _uri(v):
        if not isinstance(v, str):
            return True
        if any(c.isspace() for c in v):
            return False
        return bool(SCHEME_RE.match(urllib.parse.urlsplit(v).scheme))

    return fc


def refuse(uri: str):
    raise NoSuchResource(ref=uri)


def load(spec_dir: Path, extra: list[Path]) -> dict:
    schemas = {}
    for path in sorted(spec_dir.rglob("*.json")) + extra:
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
        sid = schema.get("$id") if isinstance(schema, dict) else None
        if not sid:
            raise ValueError(f"{path}: no $id")
        if sid in schemas:
            raise ValueError(f"{path}: duplicate $id {sid}")
        Draft202012Validator.check_schema(schema)
        schemas[sid] = schema
    return schemas


def leaf_errors(err):
    if err.context:
        for sub in err.context:
            yield from leaf_errors(sub)
    else:
        yield err


def check(instance, ref: str, registry: Registry, fc: FormatChecker, where: str) -> list[str]:
    validator = Draft202012Validator({"$ref": ref}, registry=registry, format_checker=fc)
    try:
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        out = []
        for top in errors:
            for e in leaf_errors(top):
                path = "/".join(str(p) for p in e.absolute_path)
                out.append(f"{where}/{path}: {e.message}" if path else f"{where}: {e.message}")
        return out
    except Exception as exc:  # unresolvable $ref: a local schema is missing
        return [f"{where}: cannot validate against {ref}: {exc}"]


def facet_holders(event: dict):
    for part in ("run", "job"):
        holder = event.get(part)
        if isinstance(holder, dict):
            yield f"{part}.facets", holder.get("facets")
    for side in ("inputs", "outputs"):
        datasets = event.get(side)
        for i, d in enumerate(datasets if isinstance(datasets, list) else []):
            if isinstance(d, dict):
                for k in ("facets", "inputFacets", "outputFacets"):
                    yield f"{side}[{i}].{k}", d.get(k)


def validate(event, schemas: dict) -> tuple[list[str], list[str]]:
    registry = Registry(retrieve=refuse).with_resources(
        (sid, Resource.from_contents(s)) for sid, s in schemas.items()
    )
    fc = format_checker()
    core = [sid for sid, s in schemas.items() if "RunEvent" in s.get("$defs", {})]
    if len(core) != 1:
        return [f"expected exactly one core schema defining RunEvent, found {core}"], []
    run_event_url = f"{core[0]}#/$defs/RunEvent"

    errors = check(event, run_event_url, registry, fc, "event")
    notes = [f"event -> {run_event_url}"]
    if not isinstance(event, dict):
        return errors, notes
    if event.get("schemaURL") != run_event_url:
        errors.append(f"event/schemaURL: {event.get('schemaURL')!r} is not the vendored {run_event_url!r}")

    for where, facets in facet_holders(event):
        if not isinstance(facets, dict):
            continue  # absent; a wrong type is already reported by the core schema
        for key, facet in facets.items():
            at = f"{where}.{key}"
            url = facet.get("_schemaURL") if isinstance(facet, dict) else None
            if not isinstance(url, str):
                errors.append(f"{at}: no _schemaURL, cannot pick a facet schema")
                continue
            base, _, fragment = url.partition("#")
            schema = schemas.get(base)
            if schema is None:
                errors.append(f"{at}: no local schema for _schemaURL {url!r}")
                continue
            # Facet files declare their key at the root, e.g. {"properties": {"schema": ...}}.
            keys = schema.get("properties", {})
            if key not in keys:
                errors.append(f"{at}: key {key!r} is not defined by {base} (expects {sorted(keys)})")
            elif keys[key].get("$ref") != f"#{fragment}":
                errors.append(f"{at}: {base} defines {key!r} as {keys[key].get('$ref')!r}, not #{fragment}")
            errors += check(facet, url, registry, fc, at)
            notes.append(f"{at} -> {url}")
    return errors, notes


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            event = json.load(f)
        schemas = load(Path(argv[2]), [Path(p) for p in argv[3:]])
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    errors, notes = validate(event, schemas)
    if errors:
        print(f"INVALID: {argv[1]} ({len(errors)} error(s))")
        for e in errors:
            print(f"  {e}")
        return 1
    print(f"VALID: {argv[1]}")
    for n in notes:
        print(f"  {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
