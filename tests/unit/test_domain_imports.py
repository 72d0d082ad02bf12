"""The domain stays pure: importing it loads neither scipy nor numpy."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_domain_loads_neither_scipy_nor_numpy() -> None:
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import domain"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines()}
    # the report really lists the domain's own modules, so an empty report cannot pass
    assert {"domain", "domain.statistics", "domain.instruments"} <= imported
    top_level = {name.split(".")[0] for name in imported}
    assert "scipy" not in top_level
    assert "numpy" not in top_level


def test_the_domain_exports_exactly_what_it_names() -> None:
    import domain

    assert sorted(domain.__all__) == sorted(set(domain.__all__))
    missing = [name for name in domain.__all__ if not hasattr(domain, name)]
    assert missing == []
