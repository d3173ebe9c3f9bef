"""Flatfile-style ids: a kind prefix (``us_jb_``) and a random suffix."""

from __future__ import annotations

import os
import secrets
from typing import Final, Literal

Kind = Literal["account", "environment", "space", "workbook", "sheet", "record", "job", "event"]

PREFIXES: Final[dict[str, str]] = {
    "account": "us_acc_",
    "environment": "us_env_",
    "space": "us_sp_",
    "workbook": "us_wb_",
    "sheet": "us_sh_",
    "record": "us_rc_",
    "job": "us_jb_",
    "event": "us_evt_",
}


def new_id(kind: Kind) -> str:
    """A new id of ``kind``; 64 random bits keep a million record ids collision-free."""
    return PREFIXES[kind] + secrets.token_hex(8)


def new_ids(kind: Kind, count: int) -> list[str]:
    """``count`` new ids of ``kind`` from one read of the random source (bulk inserts)."""
    prefix, digits = PREFIXES[kind], os.urandom(8 * count).hex()
    return [prefix + digits[i : i + 16] for i in range(0, 16 * count, 16)]
