"""Figure 1: cold init of the API function's module against a minimal FastAPI + Mangum app.

Each run is a fresh interpreter that times only the import (Lambda's init phase runs the
handler module's top level: imports, settings, clients, the FastAPI app). The two modules are
imported alternately, in alternating order, so machine noise falls on both alike. The
interpreter's own start-up is the same for both and is left out of the ratio.

Measured twice: with warm bytecode caches (the usual local case), and with no bytecode for
the dependencies and the project, as in a package built by `sam build`, which ships no `.pyc`
files into a read-only /var/task (the runtime's standard library is precompiled there, so it
stays cached here too).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections import defaultdict
from dataclasses import dataclass

from moto_stack import FAKE_AWS_ENV, bench_names, cmt_env
from timing import Summary, fmt_ms, ratio, summarize

__all__ = ["ColdStartResult", "ImportProfile", "measure_cold_start"]

BENCH_DIR = pathlib.Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
TARGET_RATIO = 1.1  # issue 11.6 (it was 1.3 before)
API_MODULE = "handlers.api"
BASELINE_MODULE = "minimal_app"
#: a second reference: an app of the contract's shape (as many routes and models) doing nothing
SHAPE_MODULE = "contract_shape_app"
MODULES = (API_MODULE, BASELINE_MODULE, SHAPE_MODULE)
HEAVY_PACKAGES = ("numpy", "scipy", "pandas")
# nothing listens on the discard port: an import that called AWS would fail loudly
DUMMY_ENDPOINT = "http://127.0.0.1:9"
_TIMER = "import time; t=time.perf_counter(); import {module}; print(time.perf_counter()-t)"


def cold_env() -> dict[str, str]:
    """A clean environment: no real AWS settings, the function's CMT_* variables."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CMT_", "PYTHON", "POWERTOOLS_"))
    }
    return {
        **keep,
        **FAKE_AWS_ENV,
        **cmt_env(bench_names("cold")),
        "AWS_ENDPOINT_URL": DUMMY_ENDPOINT,
        # the baseline module lives next to this file; the project's src/ is on the venv's path
        "PYTHONPATH": str(BENCH_DIR),
    }


def _python(args: list[str], module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a fresh interpreter that imports `module`; raise with its stderr if that fails."""
    done = subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=BENCH_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{done.stderr.strip()[-2000:]}")
    return done


def _import_seconds(module: str, env: dict[str, str]) -> float:
    done = _python(["-c", _TIMER.format(module=module)], module, env)
    return float(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class ImportProfile:
    """What `python -X importtime -c 'import handlers.api'` reports."""

    modules: int
    heavy_loaded: tuple[str, ...]
    module_body_seconds: float  # handlers.api's own top level: settings, clients, app
    by_package: tuple[tuple[str, float], ...]  # self time summed per top-level package


def import_profile(module: str, env: dict[str, str]) -> ImportProfile:
    done = _python(["-X", "importtime", "-c", f"import {module}"], module, env)
    names: list[str] = []
    per_package: dict[str, float] = defaultdict(float)
    body = 0.0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        self_us, name = int(parts[0]), parts[2].strip()
        names.append(name)
        per_package[name.split(".")[0]] += self_us / 1e6
        if name == module:
            body = self_us / 1e6
    heavy = tuple(
        sorted({p for p in HEAVY_PACKAGES for n in names if n == p or n.startswith(p + ".")})
    )
    ranked = sorted(per_package.items(), key=lambda kv: kv[1], reverse=True)
    return ImportProfile(
        modules=len(names),
        heavy_loaded=heavy,
        module_body_seconds=body,
        by_package=tuple(ranked[:8]),
    )


@dataclass(frozen=True)
class ColdStartResult:
    api: Summary
    baseline: Summary
    profile: ImportProfile
    runs: int
    api_no_bytecode: Summary | None = None
    baseline_no_bytecode: Summary | None = None
    shape: Summary | None = None

    @property
    def ratio(self) -> float:
        return ratio(self.api, self.baseline)

    @property
    def shape_ratio(self) -> float | None:
        """The contract's shape alone (`SHAPE_MODULE`) against the minimal app."""
        return ratio(self.shape, self.baseline) if self.shape else None

    @property
    def ratio_no_bytecode(self) -> float | None:
        if self.api_no_bytecode is None or self.baseline_no_bytecode is None:
            return None
        return ratio(self.api_no_bytecode, self.baseline_no_bytecode)

    @property
    def meets_target(self) -> bool:
        return self.ratio <= TARGET_RATIO

    def section(self) -> str:
        heavy = ", ".join(self.profile.heavy_loaded) or "none"
        rows = "\n".join(
            f"| {label} | {fmt_ms(getattr(self.api, attr))} | "
            f"{fmt_ms(getattr(self.baseline, attr))} | "
            f"{fmt_ms(getattr(self.shape, attr)) if self.shape else '—'} |"
            for label, attr in (
                ("median", "median"),
                ("p95", "p95"),
                ("IQR", "iqr"),
                ("min", "minimum"),
                ("max", "maximum"),
            )
        )
        no_bytecode = ""
        if self.api_no_bytecode and self.baseline_no_bytecode:
            a, b = self.api_no_bytecode, self.baseline_no_bytecode
            verdict = "met" if (self.ratio_no_bytecode or 0) <= TARGET_RATIO else "NOT met"
            no_bytecode = f"""
Without bytecode for the dependencies and `src/` (as a `sam build` package: no `.pyc`, and
/var/task is read-only, so every cold start compiles them), {a.n} runs of each, interleaved:

| import time, no bytecode | `{API_MODULE}` | `benchmarks/{BASELINE_MODULE}.py` |
| --- | --- | --- |
| median | {fmt_ms(a.median)} | {fmt_ms(b.median)} |
| p95 | {fmt_ms(a.p95)} | {fmt_ms(b.p95)} |
| IQR | {fmt_ms(a.iqr)} | {fmt_ms(b.iqr)} |

**Ratio of medians without bytecode: {self.ratio_no_bytecode:.2f}**
(target ≤ {TARGET_RATIO}: {verdict}).
"""
        verdict = "met" if self.meets_target else "NOT met"
        packages = "\n".join(
            f"| `{name}` | {fmt_ms(seconds)} |" for name, seconds in self.profile.by_package
        )
        return f"""\
Fresh interpreter per run, import timed in-process; {self.runs} runs of each, interleaved
(order rotating), after one discarded warm-up run each (bytecode caches warm).
Environment: the functions' `CMT_*` variables, fake credentials, `AWS_ENDPOINT_URL={DUMMY_ENDPOINT}`
(nothing listens there, so an import that called AWS would fail).

| import time | `{API_MODULE}` | `{BASELINE_MODULE}.py` | `{SHAPE_MODULE}.py` |
| --- | --- | --- | --- |
{rows}

**Ratio of medians: {self.ratio:.2f}** (target ≤ {TARGET_RATIO}: {verdict}).
{self._shape_note()}
{no_bytecode}
`-X importtime` of `{API_MODULE}`: {self.profile.modules} modules imported;
numpy / scipy / pandas loaded: **{"yes (" + heavy + ")" if self.profile.heavy_loaded else "no"}**.
The module's own top level (settings, the wiring's clients, the FastAPI app) takes
{fmt_ms(self.profile.module_body_seconds)} of that. Self import time by top-level package
(one profiled run, so noisier than the medians above):

| package | self time |
| --- | --- |
{packages}
"""

    def _shape_note(self) -> str:
        if self.shape is None or self.shape_ratio is None:
            return ""
        return f"""
The third column is a second reference: an app of the contract's shape that does nothing
(`benchmarks/{SHAPE_MODULE}.py`: as many routes as `{API_MODULE}`, each with a validated path
parameter, the bearer guard and a response model, and as many pydantic models, deferred as
ours are; a unit test keeps the counts equal). What FastAPI and pydantic spend on a contract
of this size alone is **{self.shape_ratio:.2f}×** the minimal app, a floor under any
implementation of it on this stack; `{API_MODULE}` is **{ratio(self.api, self.shape):.2f}×**
that floor, which is what its own code (settings, wiring, domain, services, logging, the
routes' real dependencies) costs at import.
"""


def _interleaved(
    runs: int, env: dict[str, str], modules: tuple[str, ...] = MODULES
) -> dict[str, Summary]:
    """Each module imported `runs` times, in an order that rotates from one run to the next."""
    seconds: dict[str, list[float]] = {module: [] for module in modules}
    for n in range(runs):
        k = n % len(modules)
        for module in modules[k:] + modules[:k]:
            seconds[module].append(_import_seconds(module, env))
    return {module: summarize(times) for module, times in seconds.items()}


def _without_package_bytecode(env: dict[str, str], cache: pathlib.Path) -> dict[str, str]:
    """An environment whose imports find bytecode for the standard library only.

    Bytecode goes to a private tree (PYTHONPYCACHEPREFIX); one priming import fills it, then
    the mirrors of site-packages and of this repository are removed and writing is switched
    off, so the dependencies and `src/` are compiled from source on every run.
    """
    primed = {**env, "PYTHONPYCACHEPREFIX": str(cache)}
    for module in (API_MODULE, BASELINE_MODULE):
        _import_seconds(module, primed)
    paths = sysconfig.get_paths()
    for tree in {paths["purelib"], paths["platlib"], str(REPO)}:
        path = pathlib.Path(tree).resolve()
        shutil.rmtree(cache / path.relative_to(path.anchor), ignore_errors=True)
    return {**primed, "PYTHONDONTWRITEBYTECODE": "1"}


def measure_cold_start(runs: int, no_bytecode_runs: int = 0) -> ColdStartResult:
    env = cold_env()
    for module in MODULES:
        _import_seconds(module, env)  # warm-up: bytecode compiled, files in the page cache
    warm = _interleaved(runs, env)
    cold: dict[str, Summary] = {}
    if no_bytecode_runs:
        with tempfile.TemporaryDirectory(prefix="cmt-bench-pycache-") as cache:
            cold = _interleaved(
                no_bytecode_runs,
                _without_package_bytecode(env, pathlib.Path(cache)),
                (API_MODULE, BASELINE_MODULE),
            )
    return ColdStartResult(
        api=warm[API_MODULE],
        baseline=warm[BASELINE_MODULE],
        shape=warm[SHAPE_MODULE],
        profile=import_profile(API_MODULE, env),
        runs=runs,
        api_no_bytecode=cold.get(API_MODULE),
        baseline_no_bytecode=cold.get(BASELINE_MODULE),
    )
