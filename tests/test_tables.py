import csv
import io

import pytest

from leanconv.tables import format_table, records_table


def test_text_columns_are_aligned():
    text = format_table(["name", "n"], [["a", 1], ["long name", None]])
    assert text.splitlines() == ["name       n", "a          1", "long name  -"]


def test_csv_quotes_commas_quotes_and_newlines():
    rows = [['say "hi"', "a,b", "two\nlines", None]]
    text = format_table(["q", "c", "n", "none"], rows, "csv")
    assert list(csv.reader(io.StringIO(text))) == [["q", "c", "n", "none"],
                                                   ['say "hi"', "a,b", "two\nlines", ""]]


def test_markdown_escapes_pipes():
    text = format_table(["spec", "x"], [["a|b", 1]], "md")
    assert text.splitlines() == ["| spec | x |", "|---|---|", "| a\\|b | 1 |"]


def test_records_and_errors():
    assert records_table([{"a": 1}], ["a", "b"], "csv") == "a,b\n1,"
    with pytest.raises(ValueError, match="row 0 has 1 cells, the header 2"):
        format_table(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="fmt='html' is invalid"):
        format_table(["a"], [], "html")
