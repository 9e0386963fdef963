"""The naming rules AWS applies, as pydantic types for the config (docs/aws-behaviours.md §31): S3 bucket names,
key prefixes, IAM role names, and regions of one partition from botocore's partition data (not a hand list)."""

from __future__ import annotations

import ipaddress
import json
import re
from functools import cache
from importlib import resources
from typing import Annotated

from pydantic import AfterValidator, Field

from include.patch_compliance.vocab import REGION_PATTERN

# General purpose bucket naming rules (Amazon S3 user guide).
_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name(value: str) -> str:
    """``value`` if S3 accepts it as a general purpose bucket name, else ValueError saying which rule it breaks."""
    if not _BUCKET_CHARS.match(value):
        raise ValueError(
            "an S3 bucket name is 3-63 lowercase letters, digits, '.' and '-', beginning and ending with a letter "
            "or digit"
        )
    if ".." in value or ".-" in value or "-." in value:
        raise ValueError("an S3 bucket name has no '..' and no '-' next to a '.'")
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        pass
    else:
        raise ValueError("an S3 bucket name must not be formatted as an IP address")
    reserved = [p for p in _BUCKET_RESERVED_PREFIXES if value.startswith(p)]
    reserved += [x for x in _BUCKET_RESERVED_SUFFIXES if value.endswith(x)]
    if reserved:
        raise ValueError(f"{reserved[0]!r} is reserved by S3 for other kinds of names")
    return value


# S3's "safe characters" for object keys; a prefix is '/'-separated segments, none empty, '.' or '..' (consoles and
# sync tools treat those as path steps, so ../../etc would leave the reports folder).
_PREFIX_SEGMENT = re.compile(r"^[A-Za-z0-9!_.*'()-]+$")


def key_prefix(value: str) -> str:
    """``value`` without outer slashes if every segment is safe, else ValueError naming the segment."""
    value = value.strip("/")
    for segment in value.split("/") if value else []:
        if segment in ("", ".", "..") or not _PREFIX_SEGMENT.match(segment):
            raise ValueError(
                f"segment {segment!r}: a prefix is '/'-separated segments of letters, digits and !_.*'()- "
                "(no empty, '.' or '..' segment)"
            )
    return value


# IAM CreateRole: RoleName [\w+=,.@-]{1,64} (ASCII), Path "/" or "/<\x21-\x7E>+/" (≤ 512). The role ARN is
# role/<path without its leading slash><name>, so a role with a path is written "path/to/RoleName".
_ROLE = re.compile(r"^(?:[\x21-\x2E\x30-\x7E]+/)*[A-Za-z0-9_+=,.@-]{1,64}$")
_MAX_ROLE_PATH = 512


def role_name(value: str) -> str:
    path, _, name = value.rpartition("/")
    if not _ROLE.match(value) or len(path) + 2 > _MAX_ROLE_PATH:
        raise ValueError(
            "an IAM role name is 1-64 of A-Z a-z 0-9 _+=,.@- , optionally after its path without the leading "
            "slash (ops/patching/RoleName)"
        )
    return value


@cache
def partition_regions() -> dict[str, str]:
    """Every region of every AWS partition -> the partition, from botocore's ``data/partitions.json``; each
    partition's ``regionRegex`` leaves out pseudo regions such as aws-global."""
    data = json.loads(resources.files("botocore").joinpath("data", "partitions.json").read_text())
    return {
        region: part["id"]
        for part in data["partitions"]
        for region in part.get("regions", {})
        if re.match(part["regionRegex"], region)
    }


def known_region(value: str) -> str:
    if value not in partition_regions():
        raise ValueError("not a region of any AWS partition in botocore's partition data; check the spelling")
    return value


def one_partition(regions: list[str]) -> list[str]:
    """Regions given once each, all of one partition (one Airflow AWS connection reaches one partition)."""
    repeated = sorted({r for r in regions if regions.count(r) > 1})
    if repeated:
        raise ValueError(f"{repeated} listed twice; give each region once")
    known = partition_regions()
    partitions = sorted({known[r] for r in regions if r in known})
    if len(partitions) > 1:
        by = {p: [r for r in regions if known.get(r) == p] for p in partitions}
        raise ValueError(f"regions must be in one partition, got {by}")
    return regions


BucketName = Annotated[str, AfterValidator(bucket_name)]
KeyPrefix = Annotated[str, AfterValidator(key_prefix)]
RoleName = Annotated[str, AfterValidator(role_name)]
Region = Annotated[str, Field(pattern=REGION_PATTERN), AfterValidator(known_region)]
Regions = Annotated[list[Region], Field(min_length=1), AfterValidator(one_partition)]


def tag_column(key: str) -> str:
    """The nodes column of a ``reports.group_by_tags`` key: ``tag_`` + the key lower-cased, every character
    outside [a-z0-9] replaced by ``_`` (``Cost Center`` -> ``tag_cost_center``)."""
    return "tag_" + re.sub(r"[^a-z0-9]", "_", key.lower())
