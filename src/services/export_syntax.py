"""Syntax files that read an export's CSV into SPSS, Stata or R and label it from the codebook.

As REDCap's exports do, the data stay one plain CSV (``services.export_csv``) and a syntax file
beside it applies what the codebook (``export_csv.codebook``) says of each column:

- **variable labels**: every column's ``label``;
- **value labels**: the columns with ``value_labels`` (the 0/1 booleans, participant status,
  instrument, band, the reason a score is missing);
- **missing-value codes**: a numeric column that can be empty has a ``missing_code``: SPSS
  recodes the empty (system-missing) field to it, declares it ``MISSING VALUES`` and labels
  it; Stata makes it the extended missing value ``.a`` with that label; R keeps ``NA`` and
  records the meaning in the column's ``"missing"`` attribute.

Each program's limits are respected: SPSS variable labels at most 255 bytes and value labels
120; Stata names at most 32 characters (the CSV is imported without its header and each
column renamed), variable labels 80 characters, value labels only on numbers (a coded text
column gets a numeric companion ``<name>_code`` carrying the labels). The files are UTF-8 and
read the CSV by its file name: run them in the folder that holds both.

References
----------
.. [1] IBM SPSS Statistics Command Syntax Reference: GET DATA (/TYPE=TXT, /QUALIFIER),
   VARIABLE LABELS, VALUE LABELS, MISSING VALUES, RECODE.
.. [2] Stata Base Reference Manual: ``import delimited`` (``bindquote(strict)``,
   ``varnames(nonames)``), ``label``; Stata's limits (``help limits``).
.. [3] R Documentation, ``utils::read.table`` (``read.csv``, ``colClasses``,
   ``na.strings``), ``base::factor``, ``base::attr``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["SYNTAX_FILES", "r_script", "spss_syntax", "stata_do_file"]

#: per syntax format: the file's extension and media type
SYNTAX_FILES: Mapping[str, tuple[str, str]] = {
    "spss": ("sps", "text/plain"),
    "stata": ("do", "text/plain"),
    "r": ("R", "text/plain"),
}

Column = Mapping[str, Any]

_SPSS_VARIABLE_LABEL_BYTES = 255
_SPSS_VALUE_LABEL_BYTES = 120
_STATA_NAME_CHARS = 32
_STATA_VARIABLE_LABEL_CHARS = 80
_STATA_STRING_LABEL_CHARS = 32_000


def _numeric(column: Column) -> bool:
    return column["type"] in ("integer", "number", "boolean")


def _free_text(column: Column) -> bool:
    return column["type"] == "string" and column["instrument"] is not None


def _header(program: str, *, csv_name: str, trial_id: str, comment: str) -> list[str]:
    return [
        f"{comment} cmt-collect export of trial {trial_id}: reads {csv_name} into {program} and",
        f"{comment} applies the codebook's variable labels, value labels and missing-value codes.",
        f"{comment} Generated with the export; run it in the folder that holds {csv_name}.",
    ]


def _cut_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, never inside a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


# -- SPSS --------------------------------------------------------------------------------------


def _spss_text(text: str, limit: int) -> str:
    # line breaks cannot stand in a quoted string; a quote is doubled
    flat = " ".join(text.split())
    return "'" + _cut_bytes(flat, limit - 2).replace("'", "''") + "'"


def _spss_value(value: Any) -> str:
    return str(value) if isinstance(value, int) else _spss_text(str(value), 255)


def _spss_format(column: Column) -> str:
    if column["type"] in ("integer", "boolean"):
        return "F8.0"
    if column["type"] == "number":
        return "F16.0"  # no implied decimals: a field's own decimal point is kept
    if _free_text(column):
        return "A32767"
    if column["type"] == "datetime":
        return "A40"
    return "A255"


def spss_syntax(columns: Sequence[Column], *, csv_name: str, trial_id: str) -> str:
    """An SPSS syntax file (.sps): GET DATA of the CSV, then labels and missing values."""
    lines = [
        "* Encoding: UTF-8.",
        *_header("SPSS", csv_name=csv_name, trial_id=trial_id, comment="*"),
    ]
    lines[-1] += "."
    lines += [
        "GET DATA",
        "  /TYPE=TXT",
        f"  /FILE={_spss_text(csv_name, 4000)}",
        "  /ENCODING='UTF8'",
        "  /ARRANGEMENT=DELIMITED",
        "  /DELCASE=LINE",
        "  /FIRSTCASE=2",
        "  /DELIMITERS=','",
        "  /QUALIFIER='\"'",
        "  /VARIABLES=",
        *(f"    {c['name']} {_spss_format(c)}" for c in columns),
        ".",
        "CACHE.",
        "EXECUTE.",
        "",
        "VARIABLE LABELS",
    ]
    lines += [
        f"  {'/' if n else ''}{c['name']} {_spss_text(c['label'], _SPSS_VARIABLE_LABEL_BYTES)}"
        for n, c in enumerate(columns)
    ]
    lines.append(".")
    numbers = [c for c in columns if c["type"] == "number"]
    if numbers:
        lines += ["FORMATS " + " ".join(c["name"] for c in numbers) + " (F10.2).", ""]
    labelled = [c for c in columns if c["value_labels"]]
    if labelled:
        lines.append("VALUE LABELS")
        for n, c in enumerate(labelled):
            pairs = " ".join(
                f"{_spss_value(v['value'])} {_spss_text(v['label'], _SPSS_VALUE_LABEL_BYTES)}"
                for v in c["value_labels"]
            )
            lines.append(f"  {'/' if n else ''}{c['name']} {pairs}")
        lines.append(".")
    coded = [c for c in columns if c["missing_code"]]
    if coded:
        lines.append("")
        for c in coded:
            code = c["missing_code"]
            label = _spss_text(code["label"], _SPSS_VALUE_LABEL_BYTES)
            lines += [
                f"RECODE {c['name']} (SYSMIS={code['value']}).",
                f"MISSING VALUES {c['name']} ({code['value']}).",
                f"ADD VALUE LABELS {c['name']} {code['value']} {label}.",
            ]
        lines.append("EXECUTE.")
    return "\r\n".join(lines) + "\r\n"


# -- Stata -------------------------------------------------------------------------------------


def _stata_text(text: str, limit: int) -> str:
    flat = " ".join(text.split())[:limit]
    # compound double quotes: any " inside stays as it is
    return '`"' + flat + "\"'"


def stata_names(columns: Sequence[Column]) -> list[str]:
    """Each column's Stata name: at most 32 characters, unique (the CSV name otherwise)."""
    taken: set[str] = set()
    names = []
    for column in columns:
        base = re.sub(r"[^A-Za-z0-9_]", "_", column["name"])[:_STATA_NAME_CHARS]
        name, n = base, 2
        while name in taken:
            suffix = f"_{n}"
            name = base[: _STATA_NAME_CHARS - len(suffix)] + suffix
            n += 1
        taken.add(name)
        names.append(name)
    return names


def stata_do_file(columns: Sequence[Column], *, csv_name: str, trial_id: str) -> str:
    """A Stata do-file: import delimited of the CSV, then labels and missing values."""
    names = stata_names(columns)
    strings = [str(n) for n, c in enumerate(columns, start=1) if not _numeric(c)]
    numbers = [str(n) for n, c in enumerate(columns, start=1) if _numeric(c)]
    lines = _header("Stata", csv_name=csv_name, trial_id=trial_id, comment="*")
    options = [
        'delimiters(",")',
        "varnames(nonames)",
        "rowrange(2)",
        'encoding("utf-8")',
        "bindquote(strict)",
        "maxquotedrows(unlimited)",
    ]
    if strings:
        options.append(f"stringcols({' '.join(strings)})")
    if numbers:
        options.append(f"numericcols({' '.join(numbers)})")
    lines += [
        "version 16",
        f'import delimited using "{csv_name}", {" ".join(options)} clear',
        *(f"rename v{n} {name}" for n, name in enumerate(names, start=1)),
        "",
    ]
    lines += [
        f"label variable {name} {_stata_text(c['label'], _STATA_VARIABLE_LABEL_CHARS)}"
        for name, c in zip(names, columns, strict=True)
    ]
    for n, (name, c) in enumerate(zip(names, columns, strict=True), start=1):
        label_name = f"lbl{n}"
        pairs: list[tuple[str, str]] = []
        if c["missing_code"]:
            lines.append(f"replace {name} = .a if missing({name})")
            pairs.append((".a", c["missing_code"]["label"]))
        if c["value_labels"] and _numeric(c):
            pairs += [(str(v["value"]), v["label"]) for v in c["value_labels"]]
            target = name
        elif c["value_labels"]:
            # Stata labels numbers only: a coded companion carries the text column's labels
            target = f"{name[: _STATA_NAME_CHARS - 5]}_code"
            lines.append(f"generate int {target} = .")
            for code, v in enumerate(c["value_labels"], start=1):
                lines.append(f'replace {target} = {code} if {name} == "{v["value"]}"')
                pairs.append((str(code), v["label"]))
            lines.append(
                f"label variable {target} "
                + _stata_text(c["label"] + " (coded)", _STATA_VARIABLE_LABEL_CHARS)
            )
        else:
            target = name
        if pairs:
            definition = " ".join(
                f"{code} {_stata_text(text, _STATA_STRING_LABEL_CHARS)}" for code, text in pairs
            )
            lines += [
                f"label define {label_name} {definition}",
                f"label values {target} {label_name}",
            ]
    return "\r\n".join(lines) + "\r\n"


# -- R -----------------------------------------------------------------------------------------

_R_CLASSES = {
    "string": "character",
    "datetime": "character",
    "integer": "integer",
    "boolean": "integer",
    "number": "numeric",
}


def _r_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "")
    return f'"{escaped}"'


def _r_vector(values: Iterable[Any]) -> str:
    return (
        "c(" + ", ".join(str(v) if isinstance(v, int) else _r_string(str(v)) for v in values) + ")"
    )


def r_script(columns: Sequence[Column], *, csv_name: str, trial_id: str) -> str:
    """An R script: read.csv of the CSV, factors with the value labels, ``label`` and
    ``missing`` attributes on every column."""
    lines = _header("R", csv_name=csv_name, trial_id=trial_id, comment="#")
    classes = ",\n".join(
        f"  {_r_string(c['name'])} = {_r_string(_R_CLASSES[c['type']])}" for c in columns
    )
    lines += [
        "# a text value the codebook does not list keeps its own level instead of becoming NA",
        "label_values <- function(x, values, labels) {",
        "  extra <- setdiff(unique(x[!is.na(x)]), values)",
        "  factor(x, levels = c(values, extra), labels = c(labels, as.character(extra)))",
        "}",
        "",
        f'data <- read.csv({_r_string(csv_name)}, fileEncoding = "UTF-8", na.strings = "",',
        "  stringsAsFactors = FALSE, check.names = FALSE, colClasses = c(",
        classes,
        "))",
        "",
    ]
    for c in columns:
        column = f"data[[{_r_string(c['name'])}]]"
        if c["value_labels"]:
            values = _r_vector(v["value"] for v in c["value_labels"])
            labels = _r_vector(v["label"] for v in c["value_labels"])
            lines.append(f"{column} <- label_values({column}, {values}, {labels})")
        lines.append(f'attr({column}, "label") <- {_r_string(c["label"])}')
        if c["missing_code"]:
            lines.append(f'attr({column}, "missing") <- {_r_string(c["missing_code"]["label"])}')
    return "\n".join(lines) + "\n"
