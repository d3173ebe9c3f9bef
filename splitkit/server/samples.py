"""Sample sheets: contacts from the packaged CSV files or N seeded synthetic contacts.

The CSV files ship inside the package (``splitkit/server/sample_data/``, read with
``importlib.resources``), so a sample loads wherever splitkit is installed;
``data/samples/README.md`` in the repository points there.

Both share one sheet layout (``CONTACTS_SHEET``) and one rule for cells: an e-mail that does
not look like one is an invalid cell, and ``lastName`` / ``email`` are required, so every
sample has some invalid records and its valid and error counts differ.
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from . import records, resources
from .store import Store

# Package data: present in a checkout, an editable install and a wheel alike.
SAMPLES_DIR: Traversable = files(__package__).joinpath("sample_data")

COLUMNS = ("firstName", "lastName", "email", "phone", "company", "country", "signupDate")
_REQUIRED = [{"type": "required"}]
CONTACTS_SHEET: dict[str, Any] = {
    "name": "Contacts",
    "slug": "contacts",
    "fields": [
        {"key": "firstName", "type": "string", "label": "First name"},
        {"key": "lastName", "type": "string", "label": "Last name", "constraints": _REQUIRED},
        {"key": "email", "type": "string", "label": "Email", "constraints": _REQUIRED},
        {"key": "phone", "type": "string", "label": "Phone"},
        {"key": "company", "type": "string", "label": "Company"},
        {"key": "country", "type": "string", "label": "Country"},
        {"key": "signupDate", "type": "date", "label": "Signup date"},
    ],
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_BAD_EMAIL = {
    "type": "error",
    "source": "custom-logic",
    "field": "email",
    "message": "Email is not a valid e-mail address",
}

_FIRST = (
    "Ava", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Sofia", "Lucas", "Mia", "Ethan", "Amara",
    "Kenji", "Priya", "Omar", "Chloe", "Diego", "Hannah", "Tomasz", "Ingrid", "Yusuf", "Leila",
    "Marco", "Aiko", "Samuel", "Zara", "Felix", "Nadia", "Jonas", "Elena", "Kwame",
)  # fmt: skip
_LAST = (
    "Smith", "Garcia", "Müller", "Rossi", "Nguyen", "Kowalski", "Johansson", "Okafor", "Tanaka",
    "Dubois", "Silva", "Patel", "Brown", "Novak", "Haddad", "Kim", "Fischer", "Moreau", "Costa",
    "Andersen", "O'Brien", "Yilmaz", "Schmidt", "Lopez",
)  # fmt: skip
_COMPANIES = (
    "Acme Corp", "Globex", "Initech", "Umbrella Labs", "Stark Industries", "Wayne Enterprises",
    "Hooli", "Vandelay Imports", "Soylent", "Tyrell Systems", "Cyberdyne", "Aperture Science",
    "Wonka Foods", "Pied Piper", "Massive Dynamic", "",
)  # fmt: skip
_COUNTRIES = (
    "United States", "Germany", "France", "Brazil", "Japan", "India", "Nigeria", "Canada",
    "Poland", "Sweden", "Italy", "Mexico", "Turkey", "South Korea", "Australia",
)  # fmt: skip
_DOMAINS = ("example.com", "mail.test", "corp.example", "inbox.example.org")
_DATES = tuple((date(2021, 1, 1) + timedelta(days=d)).isoformat() for d in range(1_400))


@dataclass(frozen=True)
class SampleSheet:
    space_id: str
    workbook_id: str
    sheet_id: str


def generate_rows(count: int, seed: int = 0) -> Iterator[dict[str, str]]:
    """``count`` synthetic contacts as plain strings; the same seed gives the same rows.

    About 2% lack a last name, 1% an e-mail, and 2% have a malformed e-mail.
    """
    rng = random.Random(seed)
    roll = rng.random

    def pick(options: Sequence[str]) -> str:
        return options[int(roll() * len(options))]  # rng.choice costs 3x more per call

    for i in range(count):
        first, last = pick(_FIRST), pick(_LAST)
        local = f"{first}.{last}".lower().replace("'", "")
        email = f"{local}{i}@{pick(_DOMAINS)}"
        fault = roll()
        if fault < 0.02:
            last = ""
        elif fault < 0.03:
            email = ""
        elif fault < 0.05:
            email = email.replace("@", " at ")
        yield {
            "firstName": first,
            "lastName": last,
            "email": email,
            "phone": f"+1-555-{int(roll() * 10_000):04d}",
            "company": pick(_COMPANIES),
            "country": pick(_COUNTRIES),
            "signupDate": _DATES[int(roll() * len(_DATES))],
        }


def contact_cells(row: Mapping[str, str]) -> dict[str, Any]:
    """A record for the contacts sheet: empty strings become null, bad e-mails invalid cells."""
    cells: dict[str, Any] = {key: (row.get(key) or None) for key in COLUMNS}
    email = cells["email"]
    if email is not None and not _EMAIL.match(email):
        cells["email"] = {"value": email, "valid": False, "messages": [_BAD_EMAIL]}
    return cells


def generate_records(count: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``count`` synthetic contact records (cells), deterministic for a given seed."""
    return (contact_cells(row) for row in generate_rows(count, seed))


def available_samples() -> list[str]:
    """The names of the packaged samples (``contacts``, ...), sorted."""
    return sorted(
        entry.name.removesuffix(".csv")
        for entry in SAMPLES_DIR.iterdir()
        if entry.name.endswith(".csv") and entry.is_file()
    )


def sample_path(name: str) -> Traversable:
    """The packaged CSV of sample ``name``; FileNotFoundError naming the samples there are."""
    path = SAMPLES_DIR.joinpath(f"{name}.csv")
    if not path.is_file():
        found = ", ".join(repr(n) for n in available_samples()) or "none"
        raise FileNotFoundError(
            f"sample {name!r} not found: the samples are {found}; pass one of them, or"
            " records=N for N generated records"
        )
    return path


def load_sample(name: str) -> list[dict[str, Any]]:
    """The records of the packaged sample ``name`` (its columns must be the contacts ones)."""
    text = sample_path(name).read_text(encoding="utf-8")
    # newline="": quoted cells may hold line breaks, which csv must see untranslated
    return [contact_cells(row) for row in csv.DictReader(io.StringIO(text, newline=""))]


def create_sample_sheet(
    store: Store,
    *,
    sample: str | None = None,
    records_count: int | None = None,
    seed: int = 0,
    environment_id: str | None = None,
) -> SampleSheet:
    """A space, workbook and contacts sheet filled from ``sample`` or ``records_count``
    generated records. Made once per database: asked again, the same sheet is returned."""
    if (sample is None) == (records_count is None):
        raise ValueError("pass exactly one of sample (a CSV name) or records_count (an int)")
    if records_count is not None and records_count < 0:
        raise ValueError(f"records_count must be a non-negative integer, got {records_count}")
    key = f"csv:{sample}" if sample is not None else f"generated:{records_count}:seed={seed}"
    environment_id = environment_id or store.environment_id
    found = resources.find_sample_workbook(store, environment_id, key)
    if found is not None:
        return SampleSheet(found["spaceId"], found["id"], found["sheets"][0]["id"])
    rows = load_sample(sample) if sample is not None else None  # fail before creating anything
    title = f"Sample: {sample}" if sample is not None else f"Sample: {records_count} contacts"
    space = resources.create_space(store, {"name": title, "environmentId": environment_id})
    fields = {"name": title, "spaceId": space["id"], "sheets": [CONTACTS_SHEET]}
    workbook = resources.create_workbook(store, fields)
    sheet_id = workbook["sheets"][0]["id"]
    records.seed(
        store, sheet_id, rows if rows is not None else generate_records(records_count or 0, seed)
    )
    # tagged only once full, so an interrupted seeding is never reused as the sample
    resources.tag_sample(store, workbook["id"], key)
    return SampleSheet(space["id"], workbook["id"], sheet_id)
