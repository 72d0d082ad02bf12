"""The SPSS, Stata and R syntax files label every column as the codebook says.

Each file is parsed back (enough to read every command it issues) and compared with the
codebook it was made from: every column read in order with its type, every column labelled,
every value label and missing-value code the codebook gives, and nothing else.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from domain.trial import Comparison, StudyProtocol, default_protocol
from services.export_csv import MISSING_CODE, codebook, long_columns, wide_columns
from services.export_syntax import r_script, spss_syntax, stata_do_file, stata_names

LAYOUTS = ["long", "wide"]
# a protocol whose wide column names are longer than Stata's 32 characters
LONG_NAMES = StudyProtocol(
    timepoints=("baseline-before-the-first-session", "after-the-twelfth-weekly-session"),
    schedule={"fscrs": ("baseline-before-the-first-session", "after-the-twelfth-weekly-session")},
    comparison=Comparison(
        pre="baseline-before-the-first-session", post="after-the-twelfth-weekly-session"
    ),
)


def columns(layout: str, protocol: StudyProtocol | None = None) -> list[dict[str, Any]]:
    return codebook(protocol=protocol or default_protocol(), layout=layout)


# -- SPSS -----------------------------------------------------------------------------------


def spss_commands(text: str) -> dict[str, list[str]]:
    """Each command of an SPSS syntax file (a command ends with a period at a line's end)."""
    commands: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.split("\r\n"):
        if not current and (not line.strip() or line.startswith("*")):
            continue
        current.append(line)
        if line.rstrip().endswith("."):
            body = "\n".join(current)
            name = re.match(r"[A-Z]+(?: [A-Z]+)*", body)
            assert name, body
            commands.setdefault(name.group(0), []).append(body)
            current = []
    assert not current, current
    return commands


def spss_strings(text: str) -> list[str]:
    return [s.replace("''", "'") for s in re.findall(r"'((?:[^']|'')*)'", text)]


def spss_pairs(spec: str) -> list[tuple[Any, str]]:
    """(value, label) pairs of one variable's VALUE LABELS specification."""
    pairs = re.findall(r"(-?\d+|'(?:[^']|'')*')\s+'((?:[^']|'')*)'", spec)
    return [
        (int(v) if not v.startswith("'") else v[1:-1].replace("''", "'"), lab.replace("''", "'"))
        for v, lab in pairs
    ]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_spss_syntax_reads_every_column_in_order_and_labels_each(layout: str) -> None:
    cols = columns(layout)
    text = spss_syntax(cols, csv_name="t-long.csv", trial_id="t")
    assert text.startswith("* Encoding: UTF-8.\r\n")
    commands = spss_commands(text)

    (get_data,) = commands["GET DATA"]
    assert "/TYPE=TXT" in get_data
    assert "/FILE='t-long.csv'" in get_data
    assert "/ENCODING='UTF8'" in get_data
    assert "/FIRSTCASE=2" in get_data
    assert "/QUALIFIER='\"'" in get_data
    read = re.findall(r"^    (\S+) (A\d+|F\d+\.0)$", get_data, flags=re.M)
    assert [name for name, _ in read] == [c["name"] for c in cols]
    for (_, form), column in zip(read, cols, strict=True):
        assert form.startswith("F") == (column["type"] in ("integer", "number", "boolean"))

    (labels,) = commands["VARIABLE LABELS"]
    entries = re.findall(r"^  /?(\S+) '((?:[^']|'')*)'$", labels, flags=re.M)
    assert [name for name, _ in entries] == [c["name"] for c in cols]
    for (_, label), column in zip(entries, cols, strict=True):
        assert label.replace("''", "'") == " ".join(column["label"].split())

    coded = [c for c in cols if c["value_labels"]]
    if coded:
        (value_labels,) = commands["VALUE LABELS"]
        specs = re.split(r"\n  /?", value_labels.removeprefix("VALUE LABELS\n  "))
        assert [spec.split(" ", 1)[0] for spec in specs] == [c["name"] for c in coded]
        for spec, column in zip(specs, coded, strict=True):
            expected = [(v["value"], v["label"]) for v in column["value_labels"]]
            assert spss_pairs(spec.split(" ", 1)[1].rstrip(".")) == expected

    missing = [c for c in cols if c["missing_code"]]
    assert missing
    declared = [
        re.fullmatch(r"MISSING VALUES (\S+) \((-?\d+)\)\.", m) for m in commands["MISSING VALUES"]
    ]
    assert [(m.group(1), int(m.group(2))) for m in declared if m] == [
        (c["name"], MISSING_CODE) for c in missing
    ]
    assert commands["RECODE"] == [f"RECODE {c['name']} (SYSMIS={MISSING_CODE})." for c in missing]
    for command, column in zip(commands["ADD VALUE LABELS"], missing, strict=True):
        assert command.startswith(f"ADD VALUE LABELS {column['name']} {MISSING_CODE} '")
        assert spss_strings(command) == [column["missing_code"]["label"]]


def test_spss_labels_keep_within_its_limits_and_quote_safely() -> None:
    cols = columns("long")
    cols[0] = {**cols[0], "label": "it's " + "é" * 300}  # 605 bytes, with a quote
    text = spss_syntax(cols, csv_name="x.csv", trial_id="t")
    (labels,) = spss_commands(text)["VARIABLE LABELS"]
    first = re.search(r"^  trial_id '((?:[^']|'')*)'$", labels, flags=re.M)
    assert first
    label = first.group(1)
    assert label.startswith("it''s ")
    assert len(label.replace("''", "'").encode("utf-8")) <= 253


# -- Stata ----------------------------------------------------------------------------------


def stata_text(quoted: str) -> str:
    assert quoted.startswith('`"'), quoted
    assert quoted.endswith("\"'"), quoted
    return quoted[2:-2]


@pytest.mark.parametrize(
    ("layout", "protocol"),
    [("long", None), ("wide", None), ("wide", LONG_NAMES)],
    ids=["long", "wide", "wide-long-names"],
)
def test_the_stata_do_file_imports_renames_labels_and_codes_every_column(
    layout: str, protocol: StudyProtocol | None
) -> None:
    cols = columns(layout, protocol)
    lines = stata_do_file(cols, csv_name="t.csv", trial_id="t").split("\r\n")
    (imported,) = [line for line in lines if line.startswith("import delimited")]
    assert imported.startswith('import delimited using "t.csv", ')
    for option in ("varnames(nonames)", "rowrange(2)", 'encoding("utf-8")', "bindquote(strict)"):
        assert option in imported
    strings = re.search(r"stringcols\(([\d ]+)\)", imported)
    numbers = re.search(r"numericcols\(([\d ]+)\)", imported)
    assert strings
    assert numbers
    kinds = {int(n): "string" for n in strings.group(1).split()} | {
        int(n): "number" for n in numbers.group(1).split()
    }
    assert sorted(kinds) == list(range(1, len(cols) + 1))

    names = stata_names(cols)
    assert all(len(name) <= 32 for name in names)
    assert len(set(names)) == len(names)
    if protocol is LONG_NAMES:
        assert any(len(c["name"]) > 32 for c in cols)
    renames = [line for line in lines if line.startswith("rename ")]
    assert renames == [f"rename v{n} {name}" for n, name in enumerate(names, start=1)]

    labels = dict(re.findall(r"^label variable (\S+) (`\".*\"')$", "\n".join(lines), flags=re.M))
    defines = dict(re.findall(r"^label define (\S+) (.*)$", "\n".join(lines), flags=re.M))
    attached = dict(re.findall(r"^label values (\S+) (\S+)$", "\n".join(lines), flags=re.M))
    for name, column in zip(names, cols, strict=True):
        assert stata_text(labels[name]) == " ".join(column["label"].split())[:80]
        expected: list[tuple[str, str]] = []
        if column["missing_code"]:
            assert f"replace {name} = .a if missing({name})" in lines
            expected.append((".a", column["missing_code"]["label"]))
        target = name
        if column["value_labels"] and column["type"] == "string":
            target = f"{name[:27]}_code"
            for code, value in enumerate(column["value_labels"], start=1):
                assert f'replace {target} = {code} if {name} == "{value["value"]}"' in lines
            expected += [(str(n), v["label"]) for n, v in enumerate(column["value_labels"], 1)]
            assert stata_text(labels[target]).endswith("(coded)")
        elif column["value_labels"]:
            expected += [(str(v["value"]), v["label"]) for v in column["value_labels"]]
        if not expected:
            assert target not in attached
            continue
        definition = defines[attached[target]]
        pairs = re.findall(r"(\.a|-?\d+) (`\".*?\"')", definition)
        assert [(code, stata_text(text)) for code, text in pairs] == expected


# -- R --------------------------------------------------------------------------------------


def r_strings(text: str) -> list[str]:
    return [
        s.replace('\\"', '"').replace("\\\\", "\\")
        for s in re.findall(r'"((?:[^"\\]|\\.)*)"', text)
    ]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_r_script_reads_with_column_classes_and_labels_every_column(layout: str) -> None:
    cols = columns(layout)
    text = r_script(cols, csv_name="t.csv", trial_id="t")
    start = text.index("data <- read.csv(")
    read = text[start : text.index("\n))\n", start) + 4]
    assert 'read.csv("t.csv", fileEncoding = "UTF-8", na.strings = ""' in read
    assert "check.names = FALSE" in read
    classes = re.findall(r'^  "([^"]+)" = "(\w+)"', read, flags=re.M)
    expected_class = {
        "string": "character",
        "datetime": "character",
        "integer": "integer",
        "boolean": "integer",
        "number": "numeric",
    }
    assert classes == [(c["name"], expected_class[c["type"]]) for c in cols]

    lines = text.splitlines()
    for column in cols:
        ref = f'data[["{column["name"]}"]]'
        assert f'attr({ref}, "label") <- "{column["label"]}"' in lines
        factor = [line for line in lines if line.startswith(f"{ref} <- label_values(")]
        if column["value_labels"]:
            (line,) = factor
            rest = line.removeprefix(f"{ref} <- label_values({ref}, c(").removesuffix("))")
            values, labels = rest.split("), c(", 1)  # the values are codes: no "), c("
            assert [
                int(v) if not v.startswith('"') else v.strip('"')
                for v in (part.strip() for part in values.split(","))
            ] == [v["value"] for v in column["value_labels"]]
            assert r_strings(labels) == [v["label"] for v in column["value_labels"]]
        else:
            assert factor == []
        missing = [line for line in lines if line.startswith(f'attr({ref}, "missing")')]
        if column["missing_code"]:
            assert r_strings(missing[0].split("<-", 1)[1]) == [column["missing_code"]["label"]]
        else:
            assert missing == []
    # the factor is made before its label, which factor() would drop
    for column in (c for c in cols if c["value_labels"]):
        ref = f'data[["{column["name"]}"]]'
        made = next(n for n, line in enumerate(lines) if line.startswith(f"{ref} <- "))
        labelled = lines.index(f'attr({ref}, "label") <- "{column["label"]}"')
        assert made < labelled


def test_every_layouts_codebook_is_its_header_without_free_text_when_deidentified() -> None:
    assert [c["name"] for c in columns("long")] == long_columns()
    assert [c["name"] for c in columns("wide")] == wide_columns(default_protocol())
    plain = codebook(protocol=default_protocol(), layout="long", free_text=False)
    assert [c["name"] for c in plain] == long_columns(free_text=False)
    assert "critical_thoughts" in long_columns()
    assert "critical_thoughts" not in long_columns(free_text=False)
