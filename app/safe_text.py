"""Show user and LLM text as text: Markdown neutralized for Streamlit's markdown elements.

Streamlit renders ``st.markdown``, ``st.caption``, ``st.success``/``st.error``/... and
``st.title`` as Markdown, so an item name like ``![t](http://host/x.png)`` would make every
viewer's browser fetch that URL. :func:`md` escapes every Markdown-significant character so
the text is displayed literally (HTML is never enabled). No streamlit import here.
"""

from __future__ import annotations

import re

#: Characters that start Markdown images, links, HTML, code, emphasis, headings, tables,
#: strike-through and math (and Streamlit's ``:color[...]`` directives, which need ``[``).
#: ``_`` is left alone: intraword it is never emphasis, and ids like ``target_id`` stay
#: readable in the raw text.
_SPECIAL = re.compile(r"([\\`*\[\]()<>#!|~$])")
#: GitHub-flavoured Markdown turns bare ``http://…``, ``https://…`` and ``www.…`` into links,
#: matched on the text after escapes are resolved (so a backslash does not stop it): an
#: invisible WORD JOINER (U+2060) before ``://`` or after ``www`` breaks the pattern.
_AUTOLINK = re.compile(r"(?i)(://|\bwww(?=\.))")
_JOINER = "\u2060"


def md(text: object) -> str:
    """``text`` escaped so that Markdown shows it literally (one line: newlines kept as spaces
    would change nothing visible, so they are replaced to keep block syntax from starting)."""
    s = str(text)
    s = s.replace("\r", " ").replace("\n", " ")
    s = _SPECIAL.sub(r"\\\1", s)
    return _AUTOLINK.sub(lambda m: _JOINER + m.group(1) if m.group(1) == "://"
                         else m.group(1) + _JOINER, s)


__all__ = ["md"]
