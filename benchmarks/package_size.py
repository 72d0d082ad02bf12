"""Figure 6: each function's deployment package, built the way `sam build` builds it.

`sam build` (aws-lambda-builders' python_pip workflow) installs `CodeUri/requirements.txt`
for the function's runtime and architecture without compiling bytecode, then copies the
CodeUri directory beside the dependencies. All four functions share `CodeUri: src/`, so one
build is measured and reported for each. The baseline is Lambda's 250 MB limit on the
unzipped package (262,144,000 bytes, functions and layers together).
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Any

__all__ = ["Function", "PackageResult", "measure_package", "template_functions"]

REPO = pathlib.Path(__file__).resolve().parents[1]
LAMBDA_UNZIPPED_LIMIT = 262_144_000  # "250 MB"
MB = 1024 * 1024
FORBIDDEN = ("numpy", "scipy", "pandas")
# what aws-lambda-builders leaves out when it copies the source directory
SOURCE_EXCLUDES = (".aws-sam", ".chalice", ".git", ".gitignore", "*.pyc", "__pycache__")


@dataclass(frozen=True)
class Function:
    logical_id: str
    handler: str
    code_uri: str
    runtime: str
    architecture: str
    memory_mb: int
    timeout_s: int


@dataclass(frozen=True)
class PackageResult:
    functions: tuple[Function, ...]
    unzipped_bytes: int
    zipped_bytes: int
    forbidden_present: tuple[str, ...]
    largest: tuple[tuple[str, int], ...]
    platform_note: str

    @property
    def fraction_of_limit(self) -> float:
        return self.unzipped_bytes / LAMBDA_UNZIPPED_LIMIT

    @property
    def meets_target(self) -> bool:
        return self.unzipped_bytes <= LAMBDA_UNZIPPED_LIMIT and not self.forbidden_present

    def section(self) -> str:
        heavy = ", ".join(self.forbidden_present) or "no"
        rows = "\n".join(
            f"| {f.logical_id} | `{f.handler}` | `{f.code_uri}` | "
            f"{self.unzipped_bytes / MB:.1f} MB | {self.fraction_of_limit:.1%} | {heavy} |"
            for f in self.functions
        )
        largest = "\n".join(f"| `{name}` | {size / MB:.1f} MB |" for name, size in self.largest)
        return f"""\
{self.platform_note}
The functions share one `CodeUri`, so one build serves all four (the figures are the same
package). Zipped (deflate): {self.zipped_bytes / MB:.1f} MB.

| function | handler | CodeUri | unzipped | of the 250 MB limit | numpy / scipy / pandas |
| --- | --- | --- | --- | --- | --- |
{rows}

Largest top-level entries of the package:

| entry | unzipped |
| --- | --- |
{largest}
"""


def template_functions() -> tuple[Function, ...]:
    from local.template import load_template

    template = load_template()
    defaults: dict[str, Any] = template.get("Globals", {}).get("Function", {})
    functions = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = {**defaults, **resource.get("Properties", {})}
        architectures = props.get("Architectures") or ["x86_64"]
        functions.append(
            Function(
                logical_id=logical_id,
                handler=str(props.get("Handler")),
                code_uri=str(props.get("CodeUri")),
                runtime=str(props.get("Runtime")),
                architecture=str(architectures[0]),
                memory_mb=int(props.get("MemorySize", 128)),
                timeout_s=int(props.get("Timeout", 3)),
            )
        )
    return tuple(functions)


def _pip_install(target: pathlib.Path, requirements: pathlib.Path, extra: list[str]) -> str | None:
    """Returns None on success, else pip's last lines of output."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
            str(target),
            "-r",
            str(requirements),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode == 0:
        return None
    return (done.stderr or done.stdout).strip()[-800:]


def _size(path: pathlib.Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _zipped_size(build: pathlib.Path, archive: pathlib.Path) -> int:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(build.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(build))
    return archive.stat().st_size


def measure_package() -> PackageResult:
    functions = template_functions()
    code_uris = {f.code_uri for f in functions}
    if len(code_uris) != 1:
        raise RuntimeError(f"functions no longer share one CodeUri: {sorted(code_uris)}")
    source = (REPO / code_uris.pop()).resolve()
    runtimes = {f.runtime for f in functions}
    architectures = {f.architecture for f in functions}
    runtime = runtimes.pop() if len(runtimes) == 1 else "python3.12"
    architecture = architectures.pop() if len(architectures) == 1 else "arm64"
    python_version = runtime.removeprefix("python")
    platform_tag = "manylinux2014_aarch64" if architecture == "arm64" else "manylinux2014_x86_64"

    with tempfile.TemporaryDirectory(prefix="cmt-bench-package-") as tmp:
        build = pathlib.Path(tmp) / "build"
        requirements = source / "requirements.txt"
        failure = _pip_install(
            build,
            requirements,
            [
                "--platform",
                platform_tag,
                "--only-binary=:all:",
                "--python-version",
                python_version,
                "--implementation",
                "cp",
            ],
        )
        if failure is None:
            note = (
                f"Dependencies from `{requirements.relative_to(REPO)}` installed for the "
                f"template's runtime and architecture ({runtime}, {architecture}: "
                f"`--platform {platform_tag} --python-version {python_version} "
                "--only-binary=:all:`), without bytecode, then `src/` copied beside them."
            )
        else:
            shutil.rmtree(build, ignore_errors=True)
            local_failure = _pip_install(build, requirements, [])
            if local_failure is not None:
                raise RuntimeError(
                    f"pip could not install the requirements: {failure}\n{local_failure}"
                )
            note = (
                f"**Fallback:** installing for {platform_tag} / Python {python_version} failed "
                f"(`{failure.splitlines()[-1] if failure else 'pip error'}`), so the "
                f"dependencies were installed for this machine's platform "
                f"({sys.platform}, Python {sys.version_info.major}.{sys.version_info.minor}) "
                "instead; sizes differ a little from the Lambda build (compiled extensions)."
            )
        shutil.copytree(
            source, build, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*SOURCE_EXCLUDES)
        )
        entries = sorted(
            ((p.name, _size(p)) for p in build.iterdir()), key=lambda e: e[1], reverse=True
        )
        forbidden = tuple(
            sorted(
                {
                    f
                    for f in FORBIDDEN
                    for name, _ in entries
                    if name == f or name.startswith((f + ".", f + "-"))
                }
            )
        )
        return PackageResult(
            functions=functions,
            unzipped_bytes=sum(size for _, size in entries),
            zipped_bytes=_zipped_size(build, pathlib.Path(tmp) / "package.zip"),
            forbidden_present=forbidden,
            largest=tuple(entries[:6]),
            platform_note=note,
        )


if __name__ == "__main__":  # handy on its own: python benchmarks/package_size.py
    result = measure_package()
    print(result.section())
    sys.exit(0 if result.meets_target else 1)
