"""The documentation holds together: every relative link of README.md, docs/ and
benchmarks/README.md resolves (file and heading), the README stays a landing page, and it
lists every command."""

import re
from pathlib import Path

import pytest

from leanconv.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md",
         *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
README_MAX_LINES = 250


def code_free(text: str) -> str:
    """``text`` without fenced code blocks (a link-like string in code is not a link)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def anchors(path: Path) -> set[str]:
    """The heading anchors GitHub makes for ``path``: lower case, punctuation dropped,
    spaces to hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#+\s+(.*)$", code_free(path.read_text(encoding="utf-8")),
                              flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(code_free(page.read_text(encoding="utf-8")))
            if not re.match(r"[a-z]+:", target)]  # http:, https:, mailto:


def test_the_pages_exist_and_link_somewhere():
    assert all(page.is_file() for page in PAGES)
    assert {p.name for p in PAGES} >= {"architecture.md", "operators.md", "models.md",
                                       "convert.md", "train.md", "cost.md", "deploy.md",
                                       "shrink.md"}
    readme_links = links(ROOT / "README.md")
    assert all(f"docs/{name}" in readme_links for name in ("operators.md", "architecture.md",
                                                            "shrink.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert broken == []


def test_the_anchor_rule_matches_github(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Make your own model cheaper\n## `leanconv shrink` (fast)\n## Use\n"
                    "## Use\n```\n# a comment, not a heading\n```\n", encoding="utf-8")
    assert anchors(page) == {"make-your-own-model-cheaper", "leanconv-shrink-fast", "use",
                             "use-1"}


def test_the_readme_is_a_landing_page_that_lists_every_command():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    for command in COMMANDS:
        name = command.__name__.rpartition(".")[2].replace("_", "-")  # deploy_check
        assert f"leanconv {name}" in text, f"README.md does not list `leanconv {name}`"
