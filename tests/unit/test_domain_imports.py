"""The domain stays pure: importing it loads neither scipy nor numpy."""

from __future__ import annotations

import pathlib
import pkgutil
import subprocess
import sys

import pytest

#: every module of the domain, imported in one interpreter
IMPORT_ALL = "import domain, " + ", ".join(
    f"domain.{module.name}"
    for module in pkgutil.iter_modules([str(pathlib.Path(__file__).parents[2] / "src" / "domain")])
)


def test_importing_the_domain_loads_neither_scipy_nor_numpy() -> None:
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", IMPORT_ALL],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines()}
    # the report really lists the domain's own modules, so an empty report cannot pass
    assert {"domain", "domain.statistics", "domain.instruments", "domain.report"} <= imported
    top_level = {name.split(".")[0] for name in imported}
    assert "scipy" not in top_level
    assert "numpy" not in top_level


def test_the_domain_exports_exactly_what_it_names() -> None:
    import domain

    assert sorted(domain.__all__) == sorted(set(domain.__all__))
    missing = [name for name in domain.__all__ if not hasattr(domain, name)]
    assert missing == []


def test_a_name_of_the_package_is_its_modules_own() -> None:
    import domain
    import domain.fhir
    import domain.statistics

    assert domain.wilcoxon_signed_rank is domain.statistics.wilcoxon_signed_rank
    assert domain.questionnaire is domain.fhir.questionnaire
    assert "describe" in dir(domain)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = domain.nothing_here
