"""The Lambda deployment zip: rowferry, its runtime dependencies, and the user's migration.

The dependencies are installed by ``pip install --target`` from binary wheels for the Lambda
platform, whatever machine builds the zip; no Docker. ``manylinux2014`` wheels (glibc 2.17) run
on every Lambda Python runtime: python3.11 on Amazon Linux 2 (glibc 2.26) and python3.12+ on
Amazon Linux 2023 (glibc 2.34), where ``manylinux_2_28`` wheels are accepted too. The default is
python3.13: AWS blocked creating python3.11 functions on 2026-07-31. The ``--python-version``
of the zip must be the function's runtime (compiled wheels are built per Python version).

Left out by default: the CLI's own dependencies (click, rich: the handler imports neither) and
boto3/botocore, which the Lambda Python runtime provides. The zip is deterministic (sorted
entries, fixed timestamps).
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rowferry import defaults
from rowferry.errors import ConfigError

#: Lambda's limits for a zip deployment package.
MAX_ZIP_MB = 50.0
MAX_UNZIPPED_MB = 250.0

ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}
DEFAULT_PYTHON = defaults.LAMBDA_PYTHON
CLI_ONLY = {"click", "rich"}
IN_RUNTIME = {"boto3", "botocore"}
AWS_EXTRA = ("aws-lambda-powertools>=2.30", "boto3>=1.28")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIPPED = re.compile(r"(^|/)(__pycache__/|bin/)|\.pyc$")


@dataclass(frozen=True)
class Bundle:
    path: Path
    bytes: int
    unzipped_bytes: int
    files: int
    packages: list[str]
    platform_tags: dict[str, str]
    handler_module: str | None

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6

    @property
    def unzipped_megabytes(self) -> float:
        return self.unzipped_bytes / 1e6


def requirements(*, with_cli: bool = False, with_boto3: bool = False) -> list[str]:
    """rowferry's runtime requirements plus its ``aws`` extra, as pip arguments."""
    declared = importlib.metadata.requires("rowferry") or []
    base = [r for r in declared if "extra ==" not in r]
    aws = [r.split(";")[0].strip() for r in declared if re.search(r"extra\s*==\s*.aws.", r)]
    found: dict[str, str] = {}
    for req in [*base, *(aws or AWS_EXTRA)]:
        name = re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower()
        found.setdefault(name, req.split(";")[0].strip())
    skipped = (set() if with_cli else CLI_ONLY) | (set() if with_boto3 else IN_RUNTIME)
    return [req for name, req in found.items() if name not in skipped]


def build(
    output: Path,
    migration: Path | None = None,
    *,
    include: Sequence[Path] = (),
    python_version: str = DEFAULT_PYTHON,
    architecture: str = "x86_64",
    with_cli: bool = False,
    with_boto3: bool = False,
) -> Bundle:
    """Build the zip at ``output`` and describe it."""
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"architecture {architecture!r}: choose x86_64 or arm64")
    if not re.fullmatch(r"3\.\d{1,2}", python_version):
        raise ConfigError(f"python version {python_version!r}: expected 3.12, 3.13 ...")
    sources = [p for p in [migration, *include] if p is not None]
    for path in sources:
        if not path.exists():
            raise ConfigError(f"{path} does not exist")
    with tempfile.TemporaryDirectory(prefix="rowferry-bundle-") as tmp:
        root = Path(tmp)
        _pip_install(
            root,
            requirements(with_cli=with_cli, with_boto3=with_boto3),
            python_version,
            platforms(python_version, architecture),
        )
        shutil.copytree(Path(__file__).parents[1], root / "rowferry", ignore=_ignore)
        for path in sources:
            _copy(path, root)
        files, unzipped = _zip(root, output)
        return Bundle(
            path=output,
            bytes=output.stat().st_size,
            unzipped_bytes=unzipped,
            files=files,
            packages=sorted(_dist_name(p) for p in root.glob("*.dist-info")),
            platform_tags=_platform_tags(root),
            handler_module=None if migration is None else _module_name(migration),
        )


def platforms(python_version: str, architecture: str) -> list[str]:
    """The wheel platforms the Lambda runtime for ``python_version`` can load."""
    machine = ARCHITECTURES[architecture]
    found = [f"manylinux2014_{machine}"]
    if tuple(int(p) for p in python_version.split(".")[:2]) >= (3, 12):  # Amazon Linux 2023
        found.append(f"manylinux_2_28_{machine}")
    return found


def _pip_install(root: Path, reqs: list[str], python_version: str, tags: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--target", str(root)]
    for tag in tags:
        cmd += ["--platform", tag]
    cmd += ["--only-binary=:all:", "--python-version", python_version, "--implementation", "cp"]
    cmd += ["--no-compile", "--disable-pip-version-check", "--quiet", *reqs]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConfigError(
            f"pip could not install the Lambda dependencies for {', '.join(tags)}, Python "
            f"{python_version} ({' '.join(reqs)}):\n{done.stderr.strip()[-2000:]}"
        )


def _ignore(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith(".pyc")}


def _copy(path: Path, root: Path) -> None:
    if path.is_dir():
        shutil.copytree(path, root / path.name, ignore=_ignore, dirs_exist_ok=True)
    else:
        shutil.copy2(path, root / path.name)


def _module_name(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def _zip(root: Path, output: Path) -> tuple[int, int]:
    output.parent.mkdir(parents=True, exist_ok=True)
    files = unzipped = 0
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            name = path.relative_to(root).as_posix()
            if _SKIPPED.search(name):
                continue
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if ".so" in path.name else 0o644) << 16
            data = path.read_bytes()
            zf.writestr(info, data, compresslevel=9)
            files += 1
            unzipped += len(data)
    return files, unzipped


def _platform_tags(root: Path) -> dict[str, str]:
    """The wheel tag of every package that is not pure Python."""
    tags: dict[str, str] = {}
    for wheel in root.glob("*.dist-info/WHEEL"):
        found = [
            line.split(":", 1)[1].strip()
            for line in wheel.read_text().splitlines()
            if line.startswith("Tag:")
        ]
        binary = [t for t in found if "linux" in t]
        if binary:
            tags[_dist_name(wheel.parent)] = binary[0]
    return tags


def _dist_name(dist_info: Path) -> str:
    """``sqlalchemy-2.1.9.dist-info`` -> ``sqlalchemy 2.1.9``."""
    return dist_info.name.removesuffix(".dist-info").replace("-", " ", 1)
