"""MkDocs hooks: the site's generated parts, built from the code and the repository's own pages.

- The home page is README.md and the results pages are benchmarks/RESULTS.md, ABLATIONS.md and their
  figures, added as they are (one copy of each, kept in the repository; README's ``docs/`` links
  point at the guides' place in the site).
- ``<!-- bscl:train-options -->`` becomes the ``bscl train`` options, one table per section, read
  from the jsonargparse parser that ``bscl train`` itself builds from the config dataclasses.
- ``<!-- bscl:citations -->`` becomes the BibTeX of every loss's paper (each loss class's ``citation``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # the checkout's bscl, installed or not


def on_files(files: Files, config: Any) -> Files:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    readme = re.sub(r"\]\(docs/", "](", readme)  # the guides sit at the site's root
    files.append(File.generated(config, "index.md", content=readme))
    bench = ROOT / "benchmarks"
    for path in [*sorted(bench.glob("*.md")), *sorted((bench / "figures").glob("*.svg"))]:
        uri = path.relative_to(ROOT).as_posix()
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def _markdown_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def train_options() -> str:
    """The ``bscl train`` options as Markdown tables, one per section of the parser."""
    from bscl.training.config import RunConfig
    from bscl.training.options import choices, train_parser

    parser = train_parser(RunConfig())
    allowed = choices()
    out = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.option_strings and a.help != "==SUPPRESS=="]
        actions = [a for a in actions if not a.option_strings[0].startswith("--hf.")]
        actions = [a for a in actions if a.option_strings[0].count(".") == 1 or group.title == "options"]
        actions = [a for a in actions if a.option_strings[0] not in ("-h", "--help")]
        if not actions:
            continue
        title = "Run" if group.title == "options" else group.title.replace("``", "`")
        out += [f"### {title[0].upper()}{title[1:]}", "", "| option | default | help |", "|---|---|---|"]
        for a in actions:
            name = a.option_strings[0]
            key = tuple(name[2:].split(".", 1)) if "." in name else None
            help_text = (a.help or "").replace("``", "`")
            if key in allowed:
                help_text += " Choices: " + ", ".join(f"`{c}`" for c in allowed[key]) + "."
            default = "" if a.default is None else f"`{a.default}`"
            out.append(f"| `{name}` | {_markdown_cell(default)} | {_markdown_cell(help_text)} |")
        out.append("")
    return "\n".join(out)


def citations() -> str:
    """The BibTeX of each loss's paper, with the losses that cite it."""
    from bscl.losses.modules import LOSSES

    cited: dict[str, list[str]] = {}
    for name, cls in LOSSES.items():
        cited.setdefault(cls.citation, []).append(name)
    out = []
    for bibtex, names in cited.items():
        out += [", ".join(f"`{n}`" for n in names) + ":", "", "```bibtex", bibtex, "```", ""]
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if "<!-- bscl:train-options -->" in markdown:
        markdown = markdown.replace("<!-- bscl:train-options -->", train_options())
    if "<!-- bscl:citations -->" in markdown:
        markdown = markdown.replace("<!-- bscl:citations -->", citations())
    return markdown
