"""index.html of a report: one self-contained page (inline CSS, no script, images by relative path), so that it
opens offline from the report directory or a copy of it."""

import html
from dataclasses import dataclass, field

CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eee; }
figure { margin: 1.5em 0; }
img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
.notes li { color: #7a4b00; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


@dataclass
class Figure:
    file: str  # relative to the report directory
    caption: str


@dataclass
class Section:
    heading: str
    figures: list = field(default_factory=list)


def _notes_html(notes):
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(note)}</li>\n" for note in notes)
    return f'<h2>Notes</h2>\n<ul class="notes">\n{items}</ul>\n'


def _section_html(section):
    parts = [f"<h2>{html.escape(section.heading)}</h2>\n"]
    for figure in section.figures:
        parts.append(f'<figure><img src="{html.escape(figure.file)}" alt="{html.escape(figure.caption)}">'
                     f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>\n")
    return "".join(parts)


def render(title, runs, settings, table_html, notes, sections):
    """runs: (label, directory) pairs; settings: one line on how the table was computed."""
    run_items = "".join(f"<li><b>{html.escape(label)}</b>: <code>{html.escape(directory)}</code></li>\n"
                        for label, directory in runs)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n<ul>\n{run_items}</ul>\n"
            f"<h2>Summary</h2>\n{table_html}\n<p>{html.escape(settings)}</p>\n{_notes_html(notes)}"
            + "".join(_section_html(section) for section in sections if section.figures)
            + "</body>\n</html>\n")
